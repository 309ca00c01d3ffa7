"""``border-exchange desk``: a service's national desk in the hit procedure.

``desk hits`` lists the hit reports on the service's alerts, each with its deadline, open
or overdue; ``desk ack`` answers one with follow-up instructions, signed with the
service's key; ``desk notices`` lists the service's own records the router quarantined;
``desk watch`` serves the open and overdue counts as a Prometheus gauge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from datetime import UTC, datetime
from pathlib import Path

from border_exchange.adapters.config_file import kafka_settings_from_file
from border_exchange.adapters.metrics import Metrics, serve_metrics
from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.cli.commands import Commands, command_group
from border_exchange.cli.logs import add_log_options, configure_from
from border_exchange.cli.publish import signing_of, signing_options
from border_exchange.domain.catalog import is_participant_id
from border_exchange.domain.hit_deadlines import DeadlineTable, HitStatus, parse_deadlines
from border_exchange.domain.times import utc_minute
from border_exchange.errors import ConfigError
from border_exchange.services import hits

_DESCRIPTION = """\
The national desk of the alert's origin sees every hit report on its alerts, verified
end to end with the post's own key, with the deadline that follows the alert's type and
priority (default: 12 h for a routine wanted person, as SIS; see docs/hits.md and
--deadlines). It acknowledges a report with 'desk ack HIT_ID --instructions ...': the
acknowledgement is signed with the service's key and routed back to the reporting post.
"""


def register(subparsers: Commands) -> None:
    """Add ``desk hits|ack|notices|watch``."""
    commands = command_group(
        subparsers,
        "desk",
        "the national desk: hit reports on our alerts, acknowledgements, notices",
        description=_DESCRIPTION,
    )

    listing = commands.add_parser(
        "hits", help="hit reports on our alerts with their deadlines (open, overdue, answered)"
    )
    _reading(listing)
    listing.set_defaults(handler=run_hits)

    ack = commands.add_parser(
        "ack",
        help="acknowledge a hit report with follow-up instructions for the post",
        description=(
            "Signs the acknowledgement of a report 'desk hits' lists with the service's key "
            "(passphrase from BX_KEY_PASSPHRASE or a prompt) and sends it from the "
            "service's outbox. The router routes it back to the reporting post only for a "
            "report it delivered to this service, from that post, on that alert; any other "
            "is quarantined as ACK_UNKNOWN_HIT ('desk notices' shows it). The post sees "
            "the instructions on the alert's page and with 'post hits'."
        ),
    )
    ack.add_argument("hit_id", metavar="HIT_ID", help="the report's id, as 'desk hits' lists it")
    signing_options(ack)
    ack.add_argument("--instructions", required=True, help="what the post is to do now")
    ack.add_argument("--contact", help="how the post reaches the desk")
    ack.set_defaults(handler=run_ack)

    notices = commands.add_parser(
        "notices", help="our own records the router quarantined: which, why, when"
    )
    notices.add_argument("--as", dest="participant", required=True, help="participant id")
    notices.add_argument("--config", type=Path, help="YAML file with a 'kafka' mapping")
    notices.set_defaults(handler=run_notices)

    watch = commands.add_parser(
        "watch", help="serve the open and overdue hits as a Prometheus gauge (bx_desk_hits)"
    )
    _reading(watch)
    watch.add_argument("--metrics-port", type=int, default=9466, help="default 9466")
    watch.add_argument("--metrics-host", default="127.0.0.1", help="default 127.0.0.1")
    watch.add_argument("--every", type=float, default=60.0, help="seconds between readings")
    add_log_options(watch)
    watch.set_defaults(handler=run_watch)


def _reading(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="participant", required=True, help="participant id")
    parser.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    parser.add_argument("--config", type=Path, help="YAML file with a 'kafka' mapping")
    parser.add_argument(
        "--deadlines", type=Path, help="deadline table YAML (hours by type and priority)"
    )


def _participant(args: argparse.Namespace) -> str:
    participant: str = args.participant
    if not is_participant_id(participant):
        raise ConfigError(f"--as: {participant!r} is not a participant id")
    return participant


def _table(args: argparse.Namespace) -> DeadlineTable:
    path: Path | None = args.deadlines
    if path is None:
        return DeadlineTable()
    try:
        return parse_deadlines(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--deadlines: cannot read {path}: {exc.strerror}") from exc


def run_hits(args: argparse.Namespace) -> int:
    """Print every hit report on our alerts, most urgent first."""
    participant = _participant(args)
    trust = load_trust_store(args.trust)
    settings = kafka_settings_from_file(args.config)
    now = datetime.now(UTC)
    rows = asyncio.run(hits.desk_hits(settings, participant, trust, _table(args), now))
    if not rows:
        print(f"no hit reports on the alerts of {participant}")
        return 0
    for row in rows:
        r = row.report
        print(
            f"{r.hit_id}  {row.status.value:<17} due {utc_minute(row.deadline)}  "
            f"{r.alert_type.value} {r.alert_id} v{r.alert_version} ({r.priority.value})"
        )
        print(
            f"    {r.action.value} at {r.place} on {utc_minute(r.hit_at)} by {r.reporter}/{r.post}"
        )
        print(f"    contact: {r.contact}")
        if r.not_acted_reason:
            print(f"    not acted on: {r.not_acted_reason}")
        if r.remarks:
            print(f"    remarks: {r.remarks}")
        if row.ack is not None:
            print(f"    acknowledged {utc_minute(row.ack.acknowledged_at)}: {row.ack.instructions}")
    counts = hits.open_counts(rows)
    print(f"{counts[HitStatus.OPEN]} open, {counts[HitStatus.OVERDUE]} overdue")
    return 0


def run_ack(args: argparse.Namespace) -> int:
    """Sign and send the acknowledgement of one report on our alerts."""
    participant = _participant(args)
    key, key_id, trust = signing_of(args)
    settings = kafka_settings_from_file(args.config)

    async def ack() -> str:
        now = datetime.now(UTC)
        rows = await hits.desk_hits(settings, participant, trust, DeadlineTable(), now)
        found = [row for row in rows if row.report.hit_id == args.hit_id]
        if not found:
            raise ConfigError(f"no hit report {args.hit_id} on the alerts of {participant}")
        sent = await hits.acknowledge(
            settings,
            found[0].report,
            key=key,
            key_id=key_id,
            instructions=args.instructions,
            now=now,
            desk_contact=args.contact,
        )
        return sent.ack_id

    ack_id = asyncio.run(ack())
    print(f"acknowledged {args.hit_id} (acknowledgement {ack_id}); it is routed to the post")
    return 0


def run_notices(args: argparse.Namespace) -> int:
    """Print every quarantine notice of our own records."""
    participant = _participant(args)
    settings = kafka_settings_from_file(args.config)
    notices = asyncio.run(hits.desk_notices(settings, participant))
    if not notices:
        print(f"no record of {participant} was quarantined")
        return 0
    for n in notices:
        ids = " ".join(
            f"{name} {value}"
            for name, value in (("message", n.message_id), ("alert", n.alert_id))
            if value
        )
        print(
            f"{utc_minute(n.quarantined_at)}  {n.reason:<20} "
            f"{n.source_topic}/{n.source_partition}/{n.source_offset} {n.message_kind or ''} {ids}"
        )
        print(f"    {n.detail}")
    return 0


def run_watch(args: argparse.Namespace) -> int:
    """Serve ``bx_desk_hits{status=open|overdue}`` until interrupted."""
    configure_from(args)
    participant = _participant(args)
    trust = load_trust_store(args.trust)
    settings = kafka_settings_from_file(args.config)
    table = _table(args)
    metrics = Metrics()
    metrics.describe("desk_hits", "Hit reports on our alerts not yet acknowledged, by status.")

    async def watch() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        async with serve_metrics(metrics, args.metrics_host, args.metrics_port):
            while not stop.is_set():
                rows = await hits.desk_hits(settings, participant, trust, table, datetime.now(UTC))
                hits.publish_gauge(metrics, participant, rows)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.every)

    asyncio.run(watch())
    return 0
