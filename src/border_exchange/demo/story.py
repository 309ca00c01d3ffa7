"""The demo: the whole exchange on a local Kafka, told in numbered steps.

A fresh one-node Kafka; a trust store with keys for CAF, COD, SSD and UN-MONUSCO;
the example agreements; provisioning (topics, one SCRAM user per role, ACLs); the
router as its own process; two border posts; four gateways publishing French and
English alerts; lookups at the posts, one of them with Kafka stopped; a
cancellation; an audit replay and a disclosure report. Every component logs in
with its own principal from the credentials file, so the ACLs are the real ones.
Everything started is stopped at the end, also on an error or Ctrl-C.

It is long because it is one script read top to bottom: the steps run in order and
share the ``Story``'s state, and cutting it would scatter a story a reader follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from border_exchange.adapters.agreement_files import AgreementHistory
from border_exchange.adapters.agreement_topic import AgreementTopic
from border_exchange.adapters.kafka_security import wait_for_login
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.keyfiles import load_private_key
from border_exchange.adapters.post_store import PostStore, State
from border_exchange.adapters.trust_file import load_trust_store, read_governed
from border_exchange.demo.alerts import story_alerts
from border_exchange.demo.cast import (
    AUDITOR,
    HTTP_ORIGIN,
    PARTICIPANTS,
    POSTS,
    UNSIGNED_BY_CAF,
    WAIT,
)
from border_exchange.demo.dates import dated_for, default_agreements
from border_exchange.demo.governance import govern
from border_exchange.demo.hit import report_and_acknowledge
from border_exchange.demo.narration import (
    Narrator,
    describe_agreements,
    describe_outcome,
    outcomes_of,
    print_table,
    short,
    type_name,
)
from border_exchange.demo.probes import (
    backup_reads,
    backup_store,
    outbox_envelope,
    oversized_write,
    publish_over_http,
    refused_write,
    wait_for_decisions,
    wait_for_quarantine,
)
from border_exchange.demo.processes import (
    KafkaHandle,
    RouterProcess,
    RunningPost,
    post_check,
    wait_until,
)
from border_exchange.demo.sandbox import make_sandbox
from border_exchange.demo.visit import visit_post_page
from border_exchange.domain import limits, naming
from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.audit_values import Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.labels import Lang
from border_exchange.domain.recipients import SectionRecipients
from border_exchange.domain.samples import sample_alert_data
from border_exchange.domain.section_seal import is_sealed, recipients_of
from border_exchange.domain.trust import HUB, TrustStore
from border_exchange.errors import AuditError, ConfigError, ValidationError
from border_exchange.services.auditor import (
    Progress,
    ReplayRequest,
    audit_entries,
    replay,
    summary_lines,
    verdict_json,
    write_report,
)
from border_exchange.services.gateway import Gateway, Receipt
from border_exchange.services.post import BorderPost, CatchUp, PostConfig
from border_exchange.services.provisioner import provision, read_secrets


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
    store_governed: bool = False
    """An under-signed admission to the trust store was refused and the router kept the store
    in force; the same admission approved by a majority was taken."""
    hit_acknowledged: bool = False
    """Bangui port's hit report reached COD's desk, open with its deadline, and the desk's
    acknowledgement came back to the post."""
    backup_shredded: bool = False
    """A backup of bangui-port's store taken before the cancellation read the alert then,
    and no longer opens it after: the post destroyed its keys."""

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
            and self.store_governed
            and self.hit_acknowledged
            and self.backup_shredded
        )


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False), encoding="utf-8")


async def _rebuilt_post(
    story: Story, lost: RunningPost, trust: TrustStore
) -> tuple[RunningPost, CatchUp]:
    """Stop ``lost``, remove its store (a disk failure), catch the same post up afresh once
    (``post run --once``), then keep it running."""
    await lost.close()
    for file in lost.path.parent.glob(lost.path.name + "*"):
        file.unlink()
    store = PostStore.open(lost.path)
    config = lost.post.config
    post = BorderPost(
        story.login(lost.principal), config, store, trust, None, lost.post.private_keys
    )
    caught_up = await post.catch_up(120.0)
    stop = asyncio.Event()
    running = RunningPost(post, store, lost.path, stop, asyncio.create_task(post.run(stop)))
    story.posts[config.participant] = running
    return running, caught_up


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
            # Each service has an encryption key: its gateway seals every section for the
            # partners its signed agreements permit, and the hub reads none of it.
            encryption=True,
        )
        paths = sandbox.write(config, passphrase.encode())
        trust = load_trust_store(paths["trust"])
        story.trust = trust
        for pid in PARTICIPANTS:
            member = trust.participants[pid]
            posts = ", ".join(member.posts) or "no post"
            say(
                f"{pid:<10} {member.name}: key {sandbox.key_ids[pid]}, encryption key "
                f"{sandbox.encryption_keys[pid].key_id}; posts: {posts}"
            )
        say(f"{'hub':<10} router's checkpoint key {sandbox.key_ids[HUB]}; auditor: {AUDITOR}")
        say(f"private keys encrypted in {config / 'keys'}")
        say(f"agreements from {_shown(agreements_path)} (set {sandbox.agreements.digest[:12]}):")
        if moved_years:
            say(f"validity windows moved by {moved_years:+d} years to be in force today")
        say("\n".join(describe_agreements(sandbox.agreements, trust)), indent=6)

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
                # The service's encryption key opens the sections sealed for it.
                (sandbox.encryption_keys[participant],),
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
        recipients = SectionRecipients.of(sandbox.agreements, trust)

        async def publish(origin: str) -> list[Receipt]:
            key = load_private_key(paths[f"key:{origin}"], passphrase.encode())
            settings = story.login(naming.gateway_principal(origin))
            mine = [a.alert for a in alerts if a.origin == origin]
            async with Gateway(
                settings, origin, key, sandbox.key_ids[origin], trust, recipients=recipients
            ) as gateway:
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
        cod_wanted = next(
            a for a in alerts if a.origin == "COD" and a.alert.alert_type is AlertType.WANTED_PERSON
        )
        sealed_receipt = receipts[cod_wanted.alert_id]
        in_outbox = await outbox_envelope(auditor, sealed_receipt, "COD")
        sealed = [s for s in in_outbox.sections if s.content is not None and is_sealed(s.content)]
        say(
            f"COD's wanted person {short(cod_wanted.alert_id)} as the hub reads it in "
            f"{naming.outbox_topic('COD')}: {len(sealed)} of {len(in_outbox.sections)} "
            "sections sealed, the hub holding no key to any:"
        )
        present = in_outbox.contents
        for section in sealed:
            assert section.content is not None
            readers = sorted({who for who, _ in recipients_of(section.content, present)})
            say(f"{section.name:<12} readable by {', '.join(readers)} only", indent=6)
        decision = decisions[sealed_receipt.message_id]
        say("the router verified the signature and every digest and decided:")
        for outcome in outcomes_of(decision):
            say(f"{outcome['participant']:<10} {describe_outcome(decision, outcome)}", indent=6)
        expected: list[tuple[RunningPost, str, str]] = []
        for entry in decisions.values():
            for outcome in outcomes_of(entry):
                running_post = story.posts.get(outcome["participant"])
                if outcome["delivered"] and running_post is not None:
                    expected.append(
                        (running_post, entry.record["origin"], entry.record["alert_id"])
                    )
        await wait_until(
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
        if copy is not None:
            say(
                f"CAF's post opened the sections sealed for CAF offline with its encryption key "
                f"{sandbox.encryption_keys['CAF'].key_id}: {', '.join(copy.sections)}"
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

    with step("Bangui port reports a hit on COD's wanted person; COD's desk answers"):
        hit_acknowledged = await report_and_acknowledge(
            caf,
            story.login(caf.principal),
            story.login(naming.gateway_principal("COD")),
            sandbox,
            f"{wanted.origin}/{wanted.alert_id}",
            say,
        )

    with step("COD cancels its wanted person: the cancellation reaches every earlier recipient"):
        say("First the router crashes (SIGKILL) and is started again:")
        assert story.router is not None
        back = await story.router.crash_and_restart()
        say(
            f"it has its partitions back {back:.1f} s after its start (static group "
            "membership, docs/router.md: Failover); it goes on from its audit chain"
        )
        steps = story.router.start_timeline()
        names = (
            ("router.starting", "imports done"),
            ("router.configured", "trust store, agreements and key loaded"),
            ("router.joined", "partitions from the group"),
            ("router.assigned", "every partition fenced and rebuilt"),
        )
        timeline = [f"{label} {steps[name]:.1f} s" for name, label in names if name in steps]
        if timeline:
            say("its log, from the process's start: " + "; ".join(timeline))
        backup = backup_store(caf.path, caf.path.with_name(f"{caf.path.stem}-backup.db"))
        keys = caf.store.key_path
        assert keys is not None  # set when the store opens
        read_before = backup_reads(backup, keys, "COD", wanted.alert_id)
        say(
            f"a backup of {caf.path.name} (without its key store {keys.name}) is taken; with "
            f"the post's keys it opens the wanted person: {'yes' if read_before else 'NO'}"
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

        await wait_until("CAF's post to apply the cancellation", cancelled)
        say(f"$ border-exchange post check --db {caf.path} --lang {lang} --name MUKENDI")
        code, output = await post_check(caf.path, lang, "--name", "MUKENDI")
        say(output.rstrip(), indent=6)
        cancel_reached = code == 1 and cancelled()
        say(
            "bangui-port no longer finds him: nobody acts on a withdrawn alert"
            if cancel_reached
            else "UNEXPECTED: the cancelled alert is still found"
        )
        shredded = read_before and not backup_reads(backup, keys, "COD", wanted.alert_id)
        say(
            "the backup taken before no longer opens him: the post destroyed the keys of "
            "every section it held (crypto-shredding)"
            if shredded
            else "UNEXPECTED: the backup still opens the cancelled alert"
        )

    with step("bangui-port loses its disk: a new store starts from the state topics"):
        in_force = {
            a.alert_id
            for a in alerts
            if a.alert_id != wanted.alert_id and caf.store.get(a.origin, a.alert_id)
        }

        rebuilt, caught_up = await _rebuilt_post(story, caf, trust)
        say(
            f"post run --once: {caught_up.applied.stored} stored, "
            + (
                "no gap (exit 0): a new store is not a gap, it starts from the state"
                if not caught_up.gaps
                else f"{len(caught_up.gaps)} gap(s) (exit 3 or 4)"
            )
        )

        def bootstrapped() -> bool:
            return in_force <= {a.alert_id for a in rebuilt.store.active()}

        await wait_until("the rebuilt post to start from the state", bootstrapped)
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

    with step("Trust store governance: admitting a service needs a majority of them"):
        assert story.router is not None
        governance = await govern(sandbox, paths["trust"], story.router, say)

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
            # Every governed store the router routed under: each record is checked under
            # the one in force when it was decided, and the change under the rules.
            governance=[read_governed(path) for path in governance.stores],
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
        store_governed=governance.refused and governance.taken,
        hit_acknowledged=hit_acknowledged,
        backup_shredded=shredded,
    )
