"""The demo: the whole exchange on a local Kafka, told in numbered steps.

A fresh one-node Kafka; a trust store with keys for CAF, COD, SSD and UN-MONUSCO;
the example agreements; provisioning (topics, one SCRAM user per role, ACLs); the
router as its own process; two border posts; four gateways publishing French and
English alerts; lookups at the posts, one of them with Kafka stopped; a
cancellation; an audit replay and a disclosure report. Every component logs in
with its own principal from the credentials file, so the ACLs are the real ones.
Everything started is stopped at the end, also on an error or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

import httpx
import structlog
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.agreement_files import AgreementHistory
from border_exchange.adapters.agreement_topic import AgreementTopic
from border_exchange.adapters.gateway_store import GatewayStore
from border_exchange.adapters.kafka_launcher import ClusterInfo
from border_exchange.adapters.kafka_security import wait_for_login
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.keyfiles import PASSPHRASE_ENV, load_private_key
from border_exchange.adapters.post_store import PostStore, State
from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.domain import limits, naming
from border_exchange.domain.agreements import AgreementSet, parse_agreement_set
from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.audit import AuditKind
from border_exchange.domain.audit_verify import AuditEntry, Window, verify_chain
from border_exchange.domain.catalog import SECTIONS, AlertType, Operation
from border_exchange.domain.consent import consents
from border_exchange.domain.encoding import decode_record
from border_exchange.domain.labels import Lang
from border_exchange.domain.samples import sample_alert_data
from border_exchange.domain.trust import HUB, TrustStore
from border_exchange.errors import AuditError, ConfigError, KafkaError, ValidationError
from border_exchange.sandbox import make_sandbox
from border_exchange.services.auditor import (
    KafkaReader,
    Progress,
    ReplayRequest,
    audit_entries,
    replay,
    summary_lines,
    verdict_json,
    write_report,
)
from border_exchange.services.gateway import Gateway, Receipt
from border_exchange.services.gateway_http import GatewayApi, create_app, serving
from border_exchange.services.post import BorderPost, PostConfig
from border_exchange.services.provisioner import provision, read_secrets
from border_exchange.web.visit import visit_post_page

PARTICIPANTS: Final = ("CAF", "COD", "SSD", "UN-MONUSCO")
UNSIGNED_BY_CAF: Final = "SSD-CAF-INCIDENTS"
"""The example agreement the demo has only SSD sign: not in force."""
POSTS: Final = {"CAF": ("bangui-port",), "COD": ("zongo",)}
"""Two posts facing each other across the Oubangui river: Bangui (CAF) and Zongo (COD)."""
AUDITOR: Final = "oversight"
WAIT: Final = 90.0
"""Seconds to wait for the router or a post before the demo gives up."""

REASONS: Final = {
    "NO_AGREEMENT": "no agreement between the two services",
    "SUSPENDED": "the agreement is suspended",
    "TYPE_NOT_COVERED": "the agreement does not cover this alert type in this direction",
    "HANDLING_ABOVE_LIMIT": "the handling code is above the agreement's limit",
    "NOT_PREVIOUS_RECIPIENT": "a cancellation goes only to those who received the alert",
    "NO_EARLIER_VERSION": "a cancellation of an alert nobody received",
    "EXPIRED": "the agreement has ended",
    "NOT_YET_IN_FORCE": "the agreement has not started",
    "TERMINATED": "the agreement was terminated",
    "NOT_SIGNED": "both services have not signed the agreement: it is not in force",
}
"""What each denial reason means, for the legend under the table."""


@dataclass(frozen=True)
class DemoOptions:
    """Where to work, whether to keep the files, the posts' screen language, the agreements."""

    directory: Path | None = None
    keep: bool = False
    lang: Lang = "fr"
    agreements: Path | None = None


@dataclass(frozen=True)
class DemoResult:
    """What the demo showed, and how long each step took."""

    directory: Path
    kept: bool
    violations: int
    lookup_hit: bool
    photo_withheld: bool
    cancel_reached: bool
    timings: tuple[tuple[str, float], ...]
    elapsed: float
    oversize_refused: bool = True
    """The gateway refused an oversized photo and the router quarantined 5 MB as TOO_LARGE."""
    rebuilt_from_state: bool = False
    """A post whose store was lost came back with every alert in force, none withdrawn."""
    page_hit: bool = False
    """A search through the post's web page found the wanted person, and said why."""

    @property
    def ok(self) -> bool:
        """Whether every point of the story came out as it should."""
        return (
            self.violations == 0
            and self.lookup_hit
            and self.photo_withheld
            and self.cancel_reached
            and self.oversize_refused
            and self.rebuilt_from_state
            and self.page_hit
        )


@dataclass(frozen=True)
class DemoAlert:
    """One alert of the story: who publishes it, the alert, and a one-line description."""

    alert: AlertInput
    summary: str

    @property
    def origin(self) -> str:
        """The publishing participant."""
        return self.alert.origin

    @property
    def alert_id(self) -> str:
        """The alert id (set by the demo)."""
        return self.alert.alert_id or ""


HTTP_ORIGIN: Final = "UN-MONUSCO"
"""The participant whose alerts the demo publishes through the gateway's HTTP API."""


async def publish_over_http(
    gateway: Gateway, alerts: Sequence[AlertInput], db: Path
) -> list[Receipt]:
    """Publish ``alerts`` as a national system would: ``POST /alerts`` to ``gateway serve``."""
    store = GatewayStore(db)
    token = store.add_client("incident-log")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    receipts: list[Receipt] = []
    try:
        app = create_app(GatewayApi(gateway, store))
        async with serving(app) as url, httpx.AsyncClient(base_url=url, headers=headers) as http:
            for alert in alerts:
                answer = await http.post(
                    "/alerts",
                    content=alert.model_dump_json(),
                    headers={"Idempotency-Key": alert.alert_id or uuid.uuid4().hex},
                )
                if answer.status_code != 202:
                    raise KafkaError(f"POST /alerts answered {answer.status_code}: {answer.text}")
                body = answer.json()
                receipts.append(
                    Receipt(
                        body["message_id"],
                        body["alert_id"],
                        body["version"],
                        body["partition"],
                        body["offset"],
                        Operation(body["operation"]),
                    )
                )
    finally:
        store.close()
    return receipts


# -- the story's alerts -------------------------------------------------------------------


def _cod_wanted_person(data: dict[str, Any]) -> None:
    today = datetime.now(UTC).date()
    sections = data["sections"]
    sections["identity"].update(
        family_names=["MUKENDI"],
        given_names=["Patrick", "Kabeya"],
        aliases=["Pata"],
        date_of_birth="1991-08-12",
        place_of_birth="Gemena",
        country_of_birth="COD",
        nationalities=["COD"],
    )
    sections["documents"]["documents"] = [
        {
            "kind": "PASSPORT",
            "number": "OB0412957",
            "issuing_country": "COD",
            "issued_on": (today - timedelta(days=5 * 365 + 30)).isoformat(),
            "expires_on": (today + timedelta(days=5 * 365 - 30)).isoformat(),
        }
    ]
    sections["description"]["distinguishing_marks"] = ["tatouage d'un lion sur l'avant-bras droit"]
    sections["offence"].update(
        category="ARMED_ROBBERY",
        description="Attaque à main armée d'une agence de transfert d'argent à Gbadolite, "
        "deux blessés.",
        warrant_reference=f"RMP {today.year}/0311",
        issuing_authority="Parquet de grande instance de Gbadolite",
    )
    sections["remarks"]["text"] = (
        "Aurait traversé l'Oubangui en pirogue vers Mobaye ; utiliserait un faux passeport."
    )
    sections["contact"] = {
        "unit_name": "Commissariat provincial du Nord-Ubangi, Gbadolite",
        "phone": "+243 81 000 0000",
        "email": "cp.nordubangi@police.example.cd",
    }


def _cod_vehicle(data: dict[str, Any]) -> None:
    sections = data["sections"]
    sections["vehicle"].update(
        plate="4127 AB 19",
        registration_country="COD",
        vin="MHFYZ59G803004127",
        model="Land Cruiser",
        vehicle_type="SUV",
    )
    sections["event"].update(
        reason="USED_IN_CRIME",
        place="Zongo",
        description="Utilisé lors de l'attaque de Gbadolite ; vu au bac de Zongo.",
    )
    sections["owner"]["holders"] = [
        {"role": "OWNER", "name": "KASONGO Albert", "address": "Avenue du Port, Zongo"}
    ]
    sections["contact"] = {"unit_name": "Commissariat provincial du Nord-Ubangi, Gbadolite"}


def _cod_incident(data: dict[str, Any]) -> None:
    sections = data["sections"]
    sections["incident"].update(
        incident_type="SMUGGLING",
        severity="MEDIUM",
        description="Saisie de 40 fûts de carburant débarqués de nuit en aval du bac.",
    )
    sections["location"].update(
        latitude=4.3417,
        longitude=18.5939,
        crossing_point="Beach de Zongo",
        place_name="Zongo, Sud-Ubangi",
        country="COD",
    )
    sections["contact"] = {"unit_name": "Police des frontières, Zongo"}


def _monusco_incident(data: dict[str, Any]) -> None:
    sections = data["sections"]
    sections["incident"].update(
        incident_type="ARMED_INCURSION",
        severity="HIGH",
        description="About thirty armed men crossed from the Semliki valley at dawn and "
        "looted the market before withdrawing.",
    )
    sections["location"].update(
        latitude=0.1330,
        longitude=29.7050,
        crossing_point="Kasindi-Mpondwe border post",
        place_name="Kasindi, Beni territory",
        country="COD",
    )
    sections["remarks"]["text"] = "Patrol from the Beni company deployed; situation calm by noon."
    sections["contact"] = {"unit_name": "UNPOL MONUSCO, Beni sector"}


def story_alerts() -> tuple[DemoAlert, ...]:
    """The alerts the four gateways publish: French from CAF and COD, English from SSD and UN."""
    plan: list[tuple[AlertType, str, str, Any, str]] = [
        (AlertType.WANTED_PERSON, "CAF", "fr", None, "NGAKOLA Jean-Baptiste, homicide at PK5"),
        (AlertType.VEHICLE_NOTICE, "CAF", "fr", None, "stolen Toyota Hilux BG 4512 A"),
        (
            AlertType.WANTED_PERSON,
            "COD",
            "fr",
            _cod_wanted_person,
            "MUKENDI Patrick, armed robbery in Gbadolite, with photo",
        ),
        (AlertType.VEHICLE_NOTICE, "COD", "fr", _cod_vehicle, "Land Cruiser 4127 AB 19"),
        (AlertType.BORDER_INCIDENT, "COD", "fr", _cod_incident, "fuel smuggling at Zongo"),
        (AlertType.VEHICLE_NOTICE, "SSD", "en", None, "hijacked Land Cruiser SSD 123 AB"),
        (AlertType.BORDER_INCIDENT, "SSD", "en", None, "cattle raid near Kajo Keji"),
        (
            AlertType.BORDER_INCIDENT,
            "UN-MONUSCO",
            "en",
            _monusco_incident,
            "armed incursion at Kasindi",
        ),
    ]
    alerts = []
    for alert_type, origin, language, adapt, summary in plan:
        data = sample_alert_data(
            alert_type,
            origin=origin,
            alert_id=uuid.uuid4().hex,
            language="fr" if language == "fr" else "en",
        )
        if adapt is not None:
            adapt(data)
        alerts.append(DemoAlert(parse_alert(data), f"{summary} ({language})"))
    return tuple(alerts)


# -- telling the story --------------------------------------------------------------------


@dataclass
class Narrator:
    """Prints numbered steps with what happened in each and how long it took."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def say(self, text: str = "", indent: int = 4) -> None:
        """Print ``text`` (each line indented)."""
        for line in text.splitlines() or [""]:
            print((" " * indent + line) if line else "", file=self.out, flush=True)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        """A numbered step: its title, what the block says, then its duration."""
        number = len(self.timings) + 1
        print(f"\n{number:2}. {title}", file=self.out, flush=True)
        started = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - started
            self.timings.append((title, took))
            self.say(f"({took:.1f} s)")


def short(alert_id: str) -> str:
    """The first eight characters of an alert id, for tables."""
    return alert_id[:8] + "…"


def type_name(alert_type: str) -> str:
    """``WANTED_PERSON`` as ``wanted person``."""
    return alert_type.lower().replace("_", " ")


# -- the pieces ---------------------------------------------------------------------------


def default_agreements() -> Path:
    """The example agreements of the source tree (COD to CAF without photo, ...)."""
    return Path(__file__).resolve().parents[3] / "examples" / "agreements.yaml"


_WINDOW_YEAR = re.compile(r"^(\s*effective_(?:from|until):\s*[\"']?)(\d{4})(?=-)", re.MULTILINE)


def _plus_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February in a year that has none
        return moment.replace(year=moment.year + years, day=28)


def dated_for(text: str, now: datetime) -> tuple[str, int]:
    """The agreement document ``text`` with its windows moved so that all are in force at ``now``.

    The windows move by the fewest whole years (0: ``text`` as written) that put ``now``
    and the day after it inside every agreement's window, so the story's verdicts stay
    those the example is written for, whatever the date of the run; only the years of
    the ``effective_from``/``effective_until`` lines change. Returns the text and the years.
    """
    agreements = parse_agreement_set(text).agreements
    for years in sorted(range(-100, 101), key=abs):
        if all(_moved(a.effective_from, a.effective_until, years, now) for a in agreements):
            if years == 0:
                return text, 0
            return _WINDOW_YEAR.sub(_year_plus(years), text), years
    return text, 0


def _year_plus(years: int) -> Callable[[re.Match[str]], str]:
    return lambda match: f"{match[1]}{int(match[2]) + years}"


def _moved(start: datetime, end: datetime | None, years: int, now: datetime) -> bool:
    return _plus_years(start, years) <= now and (
        end is None or now + timedelta(days=1) < _plus_years(end, years)
    )


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _work_directory(options: DemoOptions) -> Path:
    if options.directory is None:
        return Path(tempfile.mkdtemp(prefix="bx-demo-"))
    directory = options.directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"--dir {directory} is not empty; give a new or empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _log_to(path: Path) -> logging.Handler:
    """Send the components' structured logs and aiokafka's logs to ``path``, not the screen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = path.open("a", encoding="utf-8")  # closed with the handler
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def _unlog(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
    structlog.reset_defaults()


def _write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False), encoding="utf-8")


def _describe_agreements(aset: AgreementSet, trust: TrustStore) -> list[str]:
    lines = []
    signed = consents(aset, trust)
    for agreement in aset.agreements:
        consent = signed[agreement.id]
        by = " and ".join(consent.signed_by) or "nobody"
        missing = ", ".join(d.party for d in consent.missing)
        state = (
            f"signed by {by}"
            if consent.signed_by_both
            else f"signed by {by} only, not by {missing}: NOT IN FORCE"
        )
        lines.append(f"{agreement.id} ({agreement.status}; {state})")
        for flow in agreement.flows:
            for alert_type, terms in flow.types.items():
                everything = tuple(terms.sections) == SECTIONS[AlertType(alert_type)]
                sections = "all sections" if everything else ", ".join(terms.sections)
                lines.append(
                    f"  {flow.source:>10} -> {flow.to:<10} {type_name(alert_type)}: "
                    f"{sections}; up to {terms.max_handling}"
                )
    return lines


async def refused_write(settings: KafkaSettings, topic: str) -> str:
    """Try to write one record to ``topic``; the broker's refusal, or KafkaError if it accepts."""
    producer = AIOKafkaProducer(**settings.client_kwargs(), request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(30):
            await producer.start()
            await producer.send_and_wait(topic, b"forged", key=b"forged")
    except TopicAuthorizationFailedError as exc:
        return type(exc).__name__
    finally:
        await producer.stop()
    raise KafkaError(f"{settings.username} could write to {topic}: the ACLs are not enforced")


async def oversized_write(settings: KafkaSettings, topic: str) -> tuple[int, int, int]:
    """Write 5 MB that gzip to a few kB straight into ``topic``, as a careless partner's
    own client may; its partition, offset and size."""
    value = b"\xc3\x01" + b"\0" * (5 * limits.MIB)
    producer = AIOKafkaProducer(
        **settings.client_kwargs(),
        acks="all",
        compression_type="gzip",
        max_request_size=8 * limits.MIB,
        request_timeout_ms=10_000,
    )
    try:
        async with asyncio.timeout(30):
            await producer.start()
            sent = await producer.send_and_wait(topic, value, key=b"oversized")
    finally:
        await producer.stop()
    return sent.partition, sent.offset, len(value)


async def wait_for_quarantine(
    settings: KafkaSettings, topic: str, partition: int, offset: int
) -> dict[str, Any]:
    """Wait for the router's quarantine record of ``topic``/``partition``/``offset``."""
    deadline = time.monotonic() + WAIT
    while True:
        async with KafkaReader(settings, Progress(every=1e9)) as reader:
            for tp in await reader.partitions(naming.QUARANTINE_TOPIC):
                for log in await reader.read(tp, 0, await reader.end(tp)):
                    _, record = decode_record(log.value)
                    source = (record["source_topic"], record["source_partition"])
                    if source == (topic, partition) and record["source_offset"] == offset:
                        return record
        if time.monotonic() > deadline:
            raise KafkaError(f"the router quarantined nothing of {topic} in {WAIT}s")
        await asyncio.sleep(0.5)


async def read_decisions(
    settings: KafkaSettings, trust: TrustStore, origins: Sequence[str]
) -> dict[str, AuditEntry]:
    """Every DECISION the router recorded in the audit trails of ``origins``, by message id."""
    found: dict[str, AuditEntry] = {}
    async with KafkaReader(settings, Progress(every=1e9)) as reader:
        for origin in origins:
            for tp in await reader.partitions(naming.audit_topic(origin)):
                logs = await reader.read(tp, 0, await reader.end(tp))
                check = verify_chain(tp.topic, tp.partition, logs, trust)
                for entry in check.entries:
                    if entry.kind == AuditKind.DECISION:
                        found[str(entry.record["message_id"])] = entry
    return found


async def wait_for_decisions(
    settings: KafkaSettings, trust: TrustStore, receipts: Sequence[Receipt]
) -> dict[str, AuditEntry]:
    """Wait until the router has decided every message of ``receipts``; their decisions."""
    wanted = {r.message_id for r in receipts}
    deadline = time.monotonic() + WAIT
    while True:
        decisions = await read_decisions(settings, trust, PARTICIPANTS)
        if wanted <= decisions.keys():
            return {m: decisions[m] for m in wanted}
        if time.monotonic() > deadline:
            missing = len(wanted - decisions.keys())
            raise KafkaError(f"the router decided nothing about {missing} message(s) in {WAIT}s")
        await asyncio.sleep(0.5)


def outcomes_of(entry: AuditEntry) -> list[Mapping[str, Any]]:
    """The per-participant outcomes of a decision, the origin's own row left out."""
    origin = entry.record["origin"]
    return [o for o in entry.record["outcomes"] if o["participant"] != origin]


def describe_outcome(entry: AuditEntry, outcome: Mapping[str, Any]) -> str:
    """``delivered under COD-CAF-2026: identity, ... (photo withheld)`` or ``denied REASON``."""
    record = entry.record
    if not outcome["delivered"]:
        agreement = f" ({outcome['agreement_id']})" if outcome["agreement_id"] else ""
        return f"denied {outcome['reason']}{agreement}"
    if record["operation"] == "CANCEL":
        return "delivered (the cancellation: it received the alert before)"
    kept = list(outcome["sections"])
    order = SECTIONS[AlertType(record["alert_type"])]
    withheld = [s for s in order if s in record["sections"] and s not in kept]
    text = f"delivered under {outcome['agreement_id']}: {', '.join(kept)}"
    if withheld:
        text += f" ({', '.join(withheld)} withheld)"
    return text


@dataclass
class RunningPost:
    """A border post consuming in the background, with its store."""

    post: BorderPost
    store: PostStore
    path: Path
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def name(self) -> str:
        """``CAF bangui-port``."""
        return f"{self.post.config.participant} {self.post.config.post}"

    @property
    def principal(self) -> str:
        """The post's Kafka user."""
        return naming.post_principal(self.post.config.participant, self.post.config.post)

    async def close(self) -> None:
        """Stop consuming (the store stays on disk, searchable offline)."""
        self.stop.set()
        if not self.task.done():
            # It ends within a second with Kafka up; with Kafka gone (Ctrl-C reaches the
            # brokers too) it may sit in a reconnect: then it is cancelled.
            done, _ = await asyncio.wait({self.task}, timeout=5)
            if not done:
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.task
        self.store.close()


class RouterProcess:
    """``border-exchange router run`` as a process of its own, logging to a file."""

    def __init__(self, config: Path, log_file: Path, passphrase: str) -> None:
        self.config = config
        self.log_file = log_file
        self.passphrase = passphrase
        self.process: asyncio.subprocess.Process | None = None
        self._log_from = 0
        """Where this run's lines begin in the log file (a restart appends to it)."""

    async def crash_and_restart(self) -> float:
        """SIGKILL the router, start it again; seconds from the new start to its partitions."""
        process = self.process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        started = time.monotonic()
        await self.start()
        return time.monotonic() - started

    async def start(self) -> None:
        """Start the router and wait until it has its outbox partitions."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BX_KAFKA_", "BX_ROUTER_"))  # the config file says it all
        }
        env[PASSPHRASE_ENV] = self.passphrase
        self._log_from = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "border_exchange",
                "router",
                "run",
                "--config",
                str(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                preexec_fn=kafka_launcher.die_with_parent,
            )
        deadline = time.monotonic() + WAIT
        while not self._assigned():
            if self.process.returncode is not None:
                raise KafkaError(f"the router stopped at start: {self.last_log_line()}")
            if time.monotonic() > deadline:
                raise KafkaError(f"the router got no outbox partition in {WAIT}s")
            await asyncio.sleep(0.3)

    def _assigned(self) -> bool:
        with self.log_file.open("rb") as log:
            log.seek(self._log_from)
            lines = log.read().decode("utf-8", errors="replace").splitlines()
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "router.assigned" and event.get("partitions"):
                    return True
        return False

    def last_log_line(self) -> str:
        """The router's last log line (the reason it stopped, usually)."""
        lines = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no log)"

    async def stop(self) -> int | None:
        """SIGTERM (it finishes its transaction), SIGKILL after 15 s; the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        return process.returncode


async def _rebuilt_post(story: Story, lost: RunningPost, trust: TrustStore) -> RunningPost:
    """Stop ``lost``, remove its store (a disk failure) and start the same post afresh."""
    await lost.close()
    for file in lost.path.parent.glob(lost.path.name + "*"):
        file.unlink()
    store = PostStore.open(lost.path)
    config = lost.post.config
    post = BorderPost(story.login(lost.principal), config, store, trust)
    stop = asyncio.Event()
    running = RunningPost(post, store, lost.path, stop, asyncio.create_task(post.run(stop)))
    story.posts[config.participant] = running
    return running


async def post_check(db: Path, lang: Lang, *query: str) -> tuple[int, str]:
    """``border-exchange post check --db DB QUERY``: its exit code (0 on a hit) and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "border_exchange",
        "post",
        "check",
        "--db",
        str(db),
        "--lang",
        lang,
        *query,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return int(process.returncode or 0), output.decode("utf-8", errors="replace")


async def _wait_until(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        if time.monotonic() > deadline:
            raise KafkaError(f"gave up waiting, after {WAIT}s, for {what}")
        await asyncio.sleep(0.3)


# -- the story ----------------------------------------------------------------------------


class KafkaHandle:
    """The demo's cluster, stopped once, whoever stops it first."""

    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        self.running = True

    def stop(self) -> None:
        """Stop every node (the data stays, with the rest of the directory)."""
        if self.running:
            self.running = False
            kafka_launcher.stop_cluster(self.info)


@dataclass
class Story:
    """The state the steps share."""

    narrator: Narrator
    directory: Path
    options: DemoOptions
    kafka: KafkaHandle
    passwords: dict[str, str] = field(default_factory=dict)
    trust: TrustStore | None = None
    posts: dict[str, RunningPost] = field(default_factory=dict)
    router: RouterProcess | None = None

    @property
    def admin(self) -> KafkaSettings:
        """The administrator (only provisioning uses it)."""
        info = self.kafka.info
        return KafkaSettings(
            info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
        )

    def login(self, principal: str) -> KafkaSettings:
        """The settings of ``principal``, with its own password from the credentials file."""
        return self.admin.as_user(principal, self.passwords[principal])

    async def close(self) -> None:
        """Stop the posts and the router if they still run."""
        posts, self.posts = list(self.posts.values()), {}
        router, self.router = self.router, None
        await asyncio.gather(
            *(post.close() for post in posts), *([router.stop()] if router is not None else [])
        )


async def tell(story: Story) -> DemoResult:
    """Run the story on the started cluster of ``story`` and print it; what it showed."""
    say, step = story.narrator.say, story.narrator.step
    directory = story.directory
    config = directory / "config"
    lang = story.options.lang
    passphrase = secrets.token_urlsafe(18)

    with step("Trust store, keys and agreements"):
        agreements_path = story.options.agreements or default_agreements()
        try:
            agreements_text = agreements_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the agreements {agreements_path}: {exc}") from exc
        agreements_text, moved_years = dated_for(agreements_text, datetime.now(UTC))
        sandbox = make_sandbox(
            PARTICIPANTS,
            agreements_text,
            posts=POSTS,
            auditors=(AUDITOR,),
            start=datetime.now(UTC) - timedelta(days=1),
            # Each service's officer signs with its own key; CAF has not signed this one yet.
            signers={UNSIGNED_BY_CAF: ("SSD",)},
        )
        paths = sandbox.write(config, passphrase.encode())
        trust = load_trust_store(paths["trust"])
        story.trust = trust
        for pid in PARTICIPANTS:
            member = trust.participants[pid]
            posts = ", ".join(member.posts) or "no post"
            say(f"{pid:<10} {member.name}: key {sandbox.key_ids[pid]}; posts: {posts}")
        say(f"{'hub':<10} router's checkpoint key {sandbox.key_ids[HUB]}; auditor: {AUDITOR}")
        say(f"private keys encrypted in {config / 'keys'}")
        say(f"agreements from {_shown(agreements_path)} (set {sandbox.agreements.digest[:12]}):")
        if moved_years:
            say(f"validity windows moved by {moved_years:+d} years to be in force today")
        say("\n".join(_describe_agreements(sandbox.agreements, trust)), indent=6)

    with step("Provisioning: topics, one Kafka user per role, ACLs"):
        secrets_file = directory / "hub" / "credentials.yaml"
        result = await provision(trust, story.admin, secrets_file)
        story.passwords = read_secrets(secrets_file)
        plan = result.plan
        say(
            f"{len(plan.create_topics)} topics, {len(plan.create_users)} SCRAM users, "
            f"{len(plan.add_acls)} ACLs; passwords in {secrets_file} (mode 600)"
        )
        say("users: " + ", ".join(sorted(c.principal for c in plan.create_users)))
        await asyncio.gather(*(wait_for_login(story.login(p), WAIT) for p in story.passwords))
        refusal = await refused_write(
            story.login(naming.gateway_principal("SSD")), naming.outbox_topic("COD")
        )
        say(
            f"check: SSD's gateway writing to COD's outbox {naming.outbox_topic('COD')} "
            f"is refused by Kafka ({refusal})"
        )

    with step("Router (the hub's policy engine), as user hub.router"):
        history_dir = directory / "hub" / "agreement-history"
        router_config = directory / "hub" / "router.yaml"
        _write_yaml(
            router_config,
            {
                "kafka": {
                    "bootstrap": story.kafka.info.client_bootstrap,
                    "security_protocol": "SASL_PLAINTEXT",
                    "username": naming.ROUTER_PRINCIPAL,
                    "password": story.passwords[naming.ROUTER_PRINCIPAL],
                },
                "trust_store": str(paths["trust"]),
                "agreements": str(paths["agreements"]),
                "agreement_history": str(history_dir),
                "signing_key": str(paths[f"key:{HUB}"]),
                "checkpoint_interval": 2.0,
                "topic_refresh": 1.0,
                "metrics_port": 0,
            },
        )
        log_dir = directory / "logs"
        log_dir.mkdir(exist_ok=True)
        story.router = RouterProcess(router_config, log_dir / "router.log", passphrase)
        await story.router.start()
        assert story.router.process is not None
        say(f"border-exchange router run --config {router_config}")
        say(f"running as process {story.router.process.pid}; JSON logs in {log_dir / 'router.log'}")

    with step("Two border posts start receiving"):
        for participant, (post_name,) in POSTS.items():
            store_path = directory / "posts" / f"{participant}-{post_name}.db"
            store_path.parent.mkdir(exist_ok=True)
            store = PostStore.open(store_path)
            principal = naming.post_principal(participant, post_name)
            settings = story.login(principal)
            post = BorderPost(
                settings,
                PostConfig(participant, post_name),
                store,
                trust,
                # Each copy must name a signed agreement that permitted it.
                AgreementTopic(settings, trust, participant),
            )
            stop = asyncio.Event()
            running = RunningPost(
                post, store, store_path, stop, asyncio.create_task(post.run(stop))
            )
            story.posts[participant] = running
        for running in story.posts.values():
            async with asyncio.timeout(WAIT):
                await running.post.connected.wait()
            say(
                f"{running.name}: user {running.principal}, "
                f"reads every feed {naming.feed_prefix(running.post.config.participant)}*, "
                f"store {running.path}"
            )

    alerts = story_alerts()
    receipts: dict[str, Receipt] = {}
    with step("Four gateways publish signed alerts, each as its own user"):
        started = datetime.now(UTC) - timedelta(seconds=2)

        async def publish(origin: str) -> list[Receipt]:
            key = load_private_key(paths[f"key:{origin}"], passphrase.encode())
            settings = story.login(naming.gateway_principal(origin))
            mine = [a.alert for a in alerts if a.origin == origin]
            async with Gateway(settings, origin, key, sandbox.key_ids[origin], trust) as gateway:
                if origin == HTTP_ORIGIN:
                    return await publish_over_http(gateway, mine, directory / "gateway-http.db")
                return await gateway.publish_batch(mine)

        batches = await asyncio.gather(*(publish(p) for p in PARTICIPANTS))
        say(
            f"{HTTP_ORIGIN}'s incident log is not a Python program: it publishes over HTTP, "
            "POST /alerts -> 202 (bearer token, Idempotency-Key; `gateway serve`)"
        )
        for receipt in (r for batch in batches for r in batch):
            receipts[receipt.alert_id] = receipt
        for alert in alerts:
            receipt = receipts[alert.alert_id]
            say(
                f"{alert.origin:<10} {type_name(alert.alert.alert_type):<15} "
                f"{short(alert.alert_id)}  {alert.summary}  -> outbox partition "
                f"{receipt.partition}"
            )

    auditor = story.login(naming.auditor_principal(AUDITOR))
    with step("The router decides and delivers the permitted sections"):
        decisions = await wait_for_decisions(auditor, trust, list(receipts.values()))
        delivered = sum(1 for e in decisions.values() for o in outcomes_of(e) if o["delivered"])
        say(
            f"{len(decisions)} decisions in the audit trail, {delivered} redacted copies "
            "written to partner feeds (each still carries the origin's signature)"
        )
        expected: list[tuple[RunningPost, str, str]] = []
        for entry in decisions.values():
            for outcome in outcomes_of(entry):
                running_post = story.posts.get(outcome["participant"])
                if outcome["delivered"] and running_post is not None:
                    expected.append(
                        (running_post, entry.record["origin"], entry.record["alert_id"])
                    )
        await _wait_until(
            "the posts to store their alerts",
            lambda: all(p.store.get(o, a) is not None for p, o, a in expected),
        )
        for running in story.posts.values():
            held = running.store.active()
            say(f"{running.name} holds {len(held)} alert(s), each verified with its origin's key:")
            for stored in held:
                withheld = f"; withheld: {', '.join(stored.withheld)}" if stored.withheld else ""
                say(
                    f"{stored.origin:<10} {type_name(stored.alert_type.value):<15} "
                    f"{short(stored.alert_id)}  sections: {', '.join(stored.sections)}{withheld}",
                    indent=6,
                )

    wanted = next(
        a for a in alerts if a.origin == "COD" and a.alert.alert_type is AlertType.WANTED_PERSON
    )
    caf = story.posts["CAF"]
    with step("Lookup at CAF's post bangui-port: the COD wanted person, photo withheld"):
        say(f"$ border-exchange post check --db {caf.path} --lang {lang} --name MUKENDI")
        code, output = await post_check(caf.path, lang, "--name", "MUKENDI")
        say(output.rstrip(), indent=6)
        copy = caf.store.get("COD", wanted.alert_id)
        photo_withheld = (
            code == 0
            and copy is not None
            and "photo" in copy.withheld
            and "photo" not in copy.sections
        )
        say(
            "the photo is not in CAF's copy: COD-CAF-2026 lets wanted persons flow to CAF "
            "without it"
            if photo_withheld
            else "UNEXPECTED: the photo reached CAF"
        )

    with step("The officers' page at CAF's post: one search through it (post serve)"):
        visit = await visit_post_page(caf.path, "demo-officer", "Patrik Moukendi", lang)
        say(f"$ border-exchange post serve --db {caf.path}   # listens on loopback only")
        say(f"post page: {visit.url}/  (officer demo-officer logged in; the search is logged)")
        hits = len(visit.results)
        say(f"search by name 'Patrik Moukendi' (spelt otherwise, order swapped): {hits} hit(s)", 4)
        for line in (*visit.results[:1], *visit.why):
            say(line, 6)
        page_hit = bool(visit.results)

    with step("COD cancels its wanted person: the cancellation reaches every earlier recipient"):
        say("First the router crashes (SIGKILL) and is started again:")
        assert story.router is not None
        back = await story.router.crash_and_restart()
        say(
            f"it has its partitions back {back:.1f} s after its start (static group "
            "membership, docs/router.md: Failover); it goes on from its audit chain"
        )
        key = load_private_key(paths["key:COD"], passphrase.encode())
        settings = story.login(naming.gateway_principal("COD"))
        async with Gateway(settings, "COD", key, sandbox.key_ids["COD"], trust) as gateway:
            cancel = await gateway.cancel(wanted.alert_id, "Interpellé à Gbadolite, mandat exécuté")
        cancel_decision = (await wait_for_decisions(auditor, trust, [cancel]))[cancel.message_id]
        decisions[cancel.message_id] = cancel_decision
        say(f"COD cancels {short(wanted.alert_id)} (version {cancel.version}); the router decides:")
        for outcome in outcomes_of(cancel_decision):
            say(
                f"{outcome['participant']:<10} {describe_outcome(cancel_decision, outcome)}",
                indent=6,
            )

        def cancelled() -> bool:
            state = caf.store.version_of("COD", wanted.alert_id)
            return state is not None and state[1] is State.CANCELLED

        await _wait_until("CAF's post to apply the cancellation", cancelled)
        say(f"$ border-exchange post check --db {caf.path} --lang {lang} --name MUKENDI")
        code, output = await post_check(caf.path, lang, "--name", "MUKENDI")
        say(output.rstrip(), indent=6)
        cancel_reached = code == 1 and cancelled()
        say(
            "bangui-port no longer finds him: nobody acts on a withdrawn alert"
            if cancel_reached
            else "UNEXPECTED: the cancelled alert is still found"
        )

    with step("bangui-port loses its disk: a new store starts from the state topics"):
        in_force = {
            a.alert_id
            for a in alerts
            if a.alert_id != wanted.alert_id and caf.store.get(a.origin, a.alert_id)
        }

        rebuilt = await _rebuilt_post(story, caf, trust)

        def bootstrapped() -> bool:
            return in_force <= {a.alert_id for a in rebuilt.store.active()}

        await _wait_until("the rebuilt post to start from the state", bootstrapped)
        rebuilt_ids = {a.alert_id for a in rebuilt.store.active()}
        rebuilt_ok = rebuilt_ids == in_force and rebuilt.store.get("COD", wanted.alert_id) is None
        say(
            f"new store {rebuilt.path}: {len(rebuilt_ids)} alerts in force read from "
            f"{naming.feed_state_prefix('CAF')}* (compacted: the latest version of each alert "
            "in force, however old), then the feeds from where the state ends"
        )
        say(
            "the cancelled wanted person is not among them"
            if rebuilt_ok
            else "UNEXPECTED: the rebuilt store differs from the one it replaces"
        )
        caf = rebuilt

    with step("Size limits: an oversized photo, and 5 MB written straight into an outbox"):
        data = sample_alert_data(AlertType.WANTED_PERSON, origin="SSD", language="en")
        data["sections"]["photo"]["data"] = bytes(600 * limits.KIB)
        try:
            parse_alert(data)
        except ValidationError as exc:
            photo_refused = True
            say(f"SSD's gateway refuses a 600 KiB photo before sending: {exc.problems[0]}")
        else:
            photo_refused = False
            say("UNEXPECTED: a 600 KiB photo was accepted")
        outbox = naming.outbox_topic("SSD")
        partition, offset, size = await oversized_write(
            story.login(naming.gateway_principal("SSD")), outbox
        )
        say(
            f"SSD's own client writes {size:,} bytes (gzip: a few kB on the wire) to "
            f"{outbox}/{partition}, which its ACL allows"
        )
        record = await wait_for_quarantine(auditor, outbox, partition, offset)
        kept = len(record["original_value"] or b"")
        say(
            f"the router quarantines it as {record['reason']} ({record['detail']}), keeping "
            f"{kept:,} of {record['original_value_length']:,} bytes and their SHA-256 "
            f"{bytes(record['original_value_sha256']).hex()[:16]}...; the partition goes on"
        )
        oversize_refused = photo_refused and record["reason"] == "TOO_LARGE"

    window = Window(started, datetime.now(UTC) + timedelta(seconds=1))
    audit_dir = directory / "audit"
    audit_dir.mkdir(exist_ok=True)
    with step(f"Audit replay as user {naming.auditor_principal(AUDITOR)}"):
        verdict = await replay(
            auditor,
            trust,
            ReplayRequest(window),
            history=AgreementHistory(history_dir),
            progress=Progress(every=1e9),
        )
        write_report(audit_dir / "replay.json", verdict_json(verdict))
        say("\n".join(summary_lines(verdict)))
        say(f"report: {audit_dir / 'replay.json'}")
        say(f"{len(verdict.violations)} violations")

    with step("Disclosure report: everything COD's alerts disclosed, to whom, under what"):
        with contextlib.redirect_stderr(io.StringIO()):  # its progress lines
            found, problems = await audit_entries(auditor, trust, "COD", window)
        if problems:
            raise AuditError("COD's audit chain has problems: " + "; ".join(problems))
        (audit_dir / "disclosures-COD.json").write_text(
            json.dumps({"disclosures": [d.as_json() for d in found]}, indent=2) + "\n",
            encoding="utf-8",
        )
        say(
            f"{'alert':<10} {'ver':>3} {'type':<15} {'operation':<9} {'to':<10} "
            f"{'agreement':<17} sections"
        )
        for d in found:
            say(
                f"{short(d.alert_id):<10} {d.version:>3} {type_name(d.alert_type):<15} "
                f"{d.operation:<9} {d.recipient:<10} {d.agreement_id or '-':<17} "
                f"{', '.join(d.sections) or '-'}"
            )
        say(f"{len(found)} disclosure(s); as JSON in {audit_dir / 'disclosures-COD.json'}")

    zongo = story.posts["COD"]
    with step("Stop the router, the posts and Kafka"):
        await story.close()
        await asyncio.to_thread(story.kafka.stop)
        say("router stopped (SIGTERM: it finishes its transaction), posts stopped, Kafka stopped")

    with step("Offline lookup at COD's post zongo (Kafka is down)"):
        say(f'$ border-exchange post check --db {zongo.path} --lang {lang} --plate "SSD 123 AB"')
        code, output = await post_check(zongo.path, lang, "--plate", "SSD 123 AB")
        say(output.rstrip(), indent=6)
        lookup_hit = code == 0
        say("lookup hit, from the post's own store" if lookup_hit else "UNEXPECTED: no hit")

    print_table(story.narrator, alerts, receipts, decisions, cancel)
    return DemoResult(
        directory=directory,
        kept=story.options.keep,
        violations=len(verdict.violations),
        lookup_hit=lookup_hit,
        photo_withheld=photo_withheld,
        cancel_reached=cancel_reached,
        oversize_refused=oversize_refused,
        timings=tuple(story.narrator.timings),
        elapsed=0.0,
        rebuilt_from_state=rebuilt_ok,
        page_hit=page_hit,
    )


def print_table(
    narrator: Narrator,
    alerts: Sequence[DemoAlert],
    receipts: Mapping[str, Receipt],
    decisions: Mapping[str, AuditEntry],
    cancel: Receipt,
) -> None:
    """Who received what, and why: per alert and version, each partner's outcome."""
    narrator.say("\nWho received what, and why (the router's decisions, from the audit trail)", 0)
    reasons: set[str] = set()
    rows: list[tuple[DemoAlert, Receipt]] = [(a, receipts[a.alert_id]) for a in alerts]
    rows += [(a, cancel) for a in alerts if a.alert_id == cancel.alert_id]
    for alert, receipt in rows:
        entry = decisions[receipt.message_id]
        what = "cancellation" if entry.record["operation"] == "CANCEL" else "v1"
        narrator.say(
            f"{alert.origin} {type_name(alert.alert.alert_type)} {short(alert.alert_id)} "
            f"{what}: {alert.summary}",
            2,
        )
        for outcome in outcomes_of(entry):
            narrator.say(f"{outcome['participant']:<10} {describe_outcome(entry, outcome)}", 6)
            if not outcome["delivered"]:
                reasons.add(str(outcome["reason"]))
    narrator.say("Reasons:", 2)
    for reason in sorted(reasons):
        narrator.say(f"{reason:<22} {REASONS.get(reason, reason)}", 6)


def _print_summary(narrator: Narrator, result: DemoResult) -> None:
    say = narrator.say
    say("\nSummary", 0)
    say(f"audit replay: {result.violations} violations", 2)
    say(f"photo withheld at CAF's post: {'yes' if result.photo_withheld else 'NO'}", 2)
    say(f"search through CAF's post page: {'hit' if result.page_hit else 'NO HIT'}", 2)
    say(
        f"cancellation reached every earlier recipient: {'yes' if result.cancel_reached else 'NO'}",
        2,
    )
    say(
        "oversized photo refused, 5 MB outbox record quarantined: "
        + ("yes" if result.oversize_refused else "NO"),
        2,
    )
    say(
        "post rebuilt from the state topics, cancelled alert absent: "
        + ("yes" if result.rebuilt_from_state else "NO"),
        2,
    )
    say(
        f"offline lookup at COD's post (Kafka stopped): {'hit' if result.lookup_hit else 'NO HIT'}",
        2,
    )
    say("Timings", 0)
    width = max(len(title) for title, _ in result.timings)
    for number, (title, took) in enumerate(result.timings, start=1):
        say(f"{number:2}. {title:<{width}} {took:6.1f} s", 2)
    verdict = "under" if result.elapsed < 180 else "OVER"
    say(f"    {'total':<{width}} {result.elapsed:6.1f} s ({verdict} 3 minutes)", 2)
    if result.kept:
        say(f"Files and logs kept in {result.directory}", 0)
    else:
        say(f"Files and logs removed ({result.directory}); --keep keeps them", 0)
    say("Demo " + ("complete: every check passed" if result.ok else "FAILED: see above"), 0)


def run_demo(options: DemoOptions, out: TextIO | None = None) -> DemoResult:
    """Start Kafka, tell the story, stop everything; print it all to ``out``."""
    started = time.monotonic()
    narrator = Narrator(out or sys.stdout)
    directory = _work_directory(options)
    narrator.say("border-exchange demo: the whole exchange on a local Kafka", 0)
    narrator.say(f"working directory: {directory}", 0)
    handler = _log_to(directory / "logs" / "demo.log")
    succeeded = interrupted = False
    kafka: KafkaHandle | None = None
    try:
        with narrator.step("Start a local Kafka (the first run fetches its jars)"):
            # Started from this thread: the brokers are bound to die with it.
            info = kafka_launcher.start_cluster(1, base_dir=directory / "kafka")
            kafka = KafkaHandle(info)
            narrator.say(
                f"Kafka {info.kafka_version}, one KRaft node; SASL/SCRAM listener with the "
                f"authorizer at {info.client_bootstrap}; logs in {directory / 'kafka'}"
            )
        story = Story(narrator, directory, options, kafka)

        async def main() -> DemoResult:
            try:
                return await tell(story)
            finally:
                await story.close()

        result = asyncio.run(main())
        kafka.stop()
        result = replace(result, timings=tuple(narrator.timings))
        succeeded = True
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if kafka is not None:
            kafka.stop()
        _unlog(handler)
        # After an error the files stay, for its logs; after Ctrl-C or success, only on --keep.
        if options.keep or not (succeeded or interrupted):
            if not succeeded:
                print(f"border-exchange demo: files and logs kept in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    final = replace(result, elapsed=time.monotonic() - started)
    _print_summary(narrator, final)
    return final
