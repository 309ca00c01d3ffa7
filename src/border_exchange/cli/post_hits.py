"""``border-exchange post report-hit|send-hits|hits``: the hit procedure at a border post.

``report-hit`` checks the report against the post's store (the alert must be in force
here, the version one the post received, the time not in the future), signs it with the
post's own key and queues it in the post's database, then tries to send it: with the link
down it stays queued, and the running ``post run`` (``services.hits.keep_sending``),
``send-hits`` or the next ``report-hit`` sends it once the link is back. ``hits`` lists
the post's reports with the origin's acknowledgements.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from border_exchange.adapters.config_file import kafka_settings_from_file
from border_exchange.adapters.hit_queue import HitQueue
from border_exchange.adapters.keyfiles import load_private_key, passphrase_from_env_or_prompt
from border_exchange.adapters.post_store import PostStore
from border_exchange.adapters.trust_file import load_kept
from border_exchange.domain.catalog import is_participant_id
from border_exchange.domain.naming import is_role_name
from border_exchange.errors import ConfigError
from border_exchange.services import hits

if TYPE_CHECKING:
    from border_exchange.cli.commands import Commands


def register(commands: Commands) -> None:
    """Add ``post report-hit``, ``post send-hits`` and ``post hits``."""
    report = commands.add_parser(
        "report-hit",
        help="report a hit on a partner's alert to its origin (queued while the link is down)",
        description=(
            "Checks the report against this post's store, signs it with the post's own key "
            "(passphrase from BX_KEY_PASSPHRASE or a prompt), keeps it in the post's "
            "database and sends it; with the link down it stays queued and the running "
            "'post run' (every --send-hits-every seconds) or 'post send-hits' sends it "
            "later, once. The origin's desk answers within a deadline "
            "(12 h for a routine wanted person); 'post hits' shows the answer. The post's "
            "page takes the same report, checked the same way, on the alert's page "
            "('post serve' with --key)."
        ),
    )
    _post_options(report)
    report.add_argument("--key", required=True, type=Path, help="the post's private key file")
    report.add_argument("--key-id", help="the post's key id (default: its current key)")
    report.add_argument("--alert", required=True, help="the alert's id, as 'post check' shows it")
    report.add_argument("--origin", help="the alert's origin (when two origins share the id)")
    report.add_argument("--version", help="the version hit (default: the one held)")
    report.add_argument("--action", required=True, help=f"what was done: {hits.ACTIONS}")
    report.add_argument("--reason", help="why nothing was done (with NOT_ACTED)")
    report.add_argument("--at", help="when, ISO 8601 with a zone (default: now)")
    report.add_argument("--place", required=True, help="crossing point or place")
    report.add_argument("--contact", required=True, help="how the origin's desk reaches the post")
    report.add_argument("--remarks", help="anything else the desk should know")
    report.add_argument(
        "--queue-only", action="store_true", help="only queue it (the link is known to be down)"
    )
    report.set_defaults(handler=run_report)

    send = commands.add_parser("send-hits", help="send the queued hit reports (each once)")
    _post_options(send)
    send.set_defaults(handler=run_send)

    listing = commands.add_parser(
        "hits", help="this post's hit reports: queued or sent, and the origin's answers"
    )
    _post_options(listing)
    listing.add_argument(
        "--offline", action="store_true", help="do not fetch acknowledgements, show what is kept"
    )
    listing.set_defaults(handler=run_hits)


def _post_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--participant", required=True, help="the post's service, e.g. CAF")
    parser.add_argument("--post", required=True, help="the post's name, e.g. bangui-port")
    parser.add_argument("--db", required=True, type=Path, help="the post's SQLite store file")
    parser.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    parser.add_argument(
        "--config", type=Path, help="YAML file with a 'kafka' mapping (BX_KAFKA_* override it)"
    )


def checked_post(args: argparse.Namespace) -> tuple[str, str]:
    """``--participant`` and ``--post``, checked; the store ``--db`` must exist."""
    if not is_participant_id(args.participant):
        raise ConfigError(f"--participant: {args.participant!r} is not a participant id")
    if not is_role_name(args.post):
        raise ConfigError(f"--post: {args.post!r} must be lower-case letters, digits, hyphens")
    if not args.db.exists():
        raise ConfigError(f"no post store at {args.db} (run 'border-exchange post run' first)")
    return args.participant, args.post


def load_reporter(
    args: argparse.Namespace, participant: str, post: str, now: datetime
) -> hits.Reporter:
    """The post's signing identity from ``--key`` (passphrase from BX_KEY_PASSPHRASE or a
    prompt) and ``--key-id``, by default the post's current key in ``--trust``."""
    with PostStore.open(args.db) as store:
        trust = load_kept(args.trust, store)
    key_id: str = args.key_id or trust.current_post_key(participant, post, now).key_id
    key = load_private_key(args.key, passphrase_from_env_or_prompt())
    return hits.Reporter(participant, post, key, key_id)


def print_sent(result: hits.SendResult) -> None:
    """What one attempt to send the queue did, for the officer."""
    if result.error is None:
        print(f"sent {result.sent} hit report(s)")
    else:
        print(
            f"sent {result.sent}, {result.left} still queued: the link is down ({result.error}); "
            "'post run' or 'post send-hits' sends them once it is back"
        )


def run_report(args: argparse.Namespace) -> int:
    """Check, sign, queue and (unless told not to) send one hit report."""
    participant, post = checked_post(args)
    now = datetime.now(UTC)
    entry = hits.HitEntry(
        alert_id=args.alert,
        action=args.action,
        place=args.place,
        contact=args.contact,
        origin=args.origin,
        version=args.version,
        at=args.at,
        remarks=args.remarks,
        reason=args.reason,
    )
    reporter = load_reporter(args, participant, post, now)
    with PostStore.open(args.db) as store:
        report, value = hits.report_entered(store, reporter, entry, now)
    with HitQueue(args.db) as queue:
        queue.queue(report, value)
        print(
            f"hit {report.hit_id} on {report.alert_type.value} {report.alert_id} "
            f"v{report.alert_version} of {report.alert_origin}: signed and queued"
        )
        if not args.queue_only:
            settings = kafka_settings_from_file(args.config)
            print_sent(asyncio.run(hits.send_queued(settings, queue, participant)))
    return 0


def run_send(args: argparse.Namespace) -> int:
    """Send every queued report; exit 0 when nothing is left queued, 1 otherwise."""
    participant, _ = checked_post(args)
    settings = kafka_settings_from_file(args.config)
    with HitQueue(args.db) as queue:
        result = asyncio.run(hits.send_queued(settings, queue, participant))
    print_sent(result)
    return 0 if result.left == 0 else 1


def run_hits(args: argparse.Namespace) -> int:
    """Fetch the acknowledgements (unless offline), then list the post's reports."""
    participant, post = checked_post(args)
    with HitQueue(args.db) as queue:
        if not args.offline:
            with PostStore.open(args.db) as store:
                trust = load_kept(args.trust, store)
            settings = kafka_settings_from_file(args.config)
            asyncio.run(hits.send_queued(settings, queue, participant))
            asyncio.run(hits.collect_acks(settings, queue, participant, post, trust))
        reports = queue.reports()
    if not reports:
        print("no hit reports from this post")
        return 0
    for hit in reports:
        at = hit.hit_at.strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"{hit.hit_id}  {hit.state.value:<6} {hit.action} at {hit.place} {at}  "
            f"alert {hit.alert_id} v{hit.alert_version} of {hit.alert_origin}"
        )
        if hit.acknowledged_at is not None:
            when = hit.acknowledged_at.strftime("%Y-%m-%d %H:%M UTC")
            print(f"    acknowledged by {hit.alert_origin} {when}: {hit.instructions}")
            if hit.desk_contact:
                print(f"    desk: {hit.desk_contact}")
        else:
            print("    not acknowledged yet")
    return 0
