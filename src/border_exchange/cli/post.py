"""``border-exchange post``: run a border post, and search its store offline.

``post run`` keeps the store in step with the feeds and sends the post's queued hit
reports (``post_hits``); ``post check``, ``post list`` and
``post status`` only read the SQLite store, so they answer while the link is down.
``post serve`` is the officers' web page over the same store; ``post user`` manages
their accounts and ``post log`` the consultation log (every ``check`` and every web
search is logged).
Labels are in French or English (``--lang``, by default from the locale); alert
content is printed as its origin wrote it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import structlog

from border_exchange.adapters.agreement_topic import AgreementTopic
from border_exchange.adapters.config_file import kafka_settings_from_file
from border_exchange.adapters.hit_queue import HitQueue
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.keyfiles import load_encryption_key, passphrase_from_env_or_prompt
from border_exchange.adapters.metrics import serve_metrics
from border_exchange.adapters.officer_db import OfficerDB, officers_path
from border_exchange.adapters.post_store import PostStore, StoredAlert
from border_exchange.adapters.trust_file import load_kept
from border_exchange.cli.commands import Commands, command_group
from border_exchange.cli.logs import add_log_options, configure_from
from border_exchange.cli.post_hits import print_sent
from border_exchange.domain.catalog import is_participant_id
from border_exchange.domain.labels import (
    LANGUAGES,
    Lang,
    content_text,
    label,
    language_from_environment,
    when,
)
from border_exchange.domain.lookup import SearchKind
from border_exchange.domain.naming import is_role_name
from border_exchange.domain.retention import DEFAULT_POLICY
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import ConfigError, KafkaError
from border_exchange.services import hits, post_search
from border_exchange.services.post import BorderPost, CatchUp, PostConfig
from border_exchange.services.provisioner import load_retention

EXIT_CAUGHT_UP: Final = 0
EXIT_GAP_HEALED: Final = 3
"""``post run --once``: caught up, but a feed had deleted records the post had not read;
the partition was bootstrapped from its state topic (``post status`` lists the gap)."""
EXIT_GAP_NOT_HEALED: Final = 4
"""``post run --once``: alerts may be missing: a gap with no state topic to heal it from,
or a feed the post should follow that the cluster's metadata did not show in time."""
ONCE_TIMEOUT: Final = 600.0

log = structlog.get_logger("border_exchange.post")


def register(subparsers: Commands) -> None:
    """Add ``post run|status|check|list``."""
    commands = command_group(subparsers, "post", "run a border post and search its alerts offline")

    run = commands.add_parser(
        "run",
        help="consume the participant's partner feeds into the store; send queued hit reports",
    )
    run.add_argument("--participant", required=True, help="the post's service, e.g. COD")
    run.add_argument("--post", required=True, help="the post's name, e.g. kasindi")
    run.add_argument("--db", required=True, type=Path, help="SQLite store file")
    run.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    run.add_argument("--from", dest="partners", help="only these partners' feeds, e.g. UGA,SSD")
    run.add_argument(
        "--decryption-key",
        dest="decryption_keys",
        type=Path,
        action="append",
        default=[],
        help="the service's private encryption key file (<key id>.pem), to open sealed "
        "sections; repeat it for a retired key still needed (passphrase: BX_KEY_PASSPHRASE)",
    )
    run.add_argument(
        "--retention",
        type=Path,
        help="retention settings file (its grace: how long a cancelled or expired alert's "
        "row stays, without content); default: the built-in policy, 7 days",
    )
    run.add_argument(
        "--config", type=Path, help="YAML file with a 'kafka' mapping (BX_KAFKA_* override it)"
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="catch up (from the state topics where needed, then every feed to its end), "
        "send the queued hit reports and fetch the acknowledgements awaited (what cannot go "
        f"stays queued for the next run), and exit: {EXIT_CAUGHT_UP} caught up, "
        f"{EXIT_GAP_HEALED} caught up but a gap was met and healed from the state, "
        f"{EXIT_GAP_NOT_HEALED} alerts may be missing (a gap could not be healed, or a "
        "feed to follow was not in the cluster's metadata in time), 1 an error (e.g. no "
        "broker within --timeout)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=ONCE_TIMEOUT,
        help="with --once: seconds to keep trying an unreachable broker "
        f"(default {ONCE_TIMEOUT:g})",
    )
    run.add_argument(
        "--send-hits-every",
        type=float,
        default=hits.SEND_EVERY_SECONDS,
        metavar="SECONDS",
        help="how often to try sending this post's queued hit reports (from 'post "
        "report-hit' or the web page's hit form, queued while the link was down), each "
        "once, and to fetch the origins' acknowledgements awaited; default "
        f"{hits.SEND_EVERY_SECONDS:g}",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics on this port of --metrics-host (default 0: none)",
    )
    run.add_argument(
        "--metrics-host", default="127.0.0.1", help="address for the metrics (default loopback)"
    )
    add_log_options(run)
    run.set_defaults(handler=run_post)

    status = commands.add_parser("status", help="last sync time and lag of every feed")
    _store_options(status)
    status.set_defaults(handler=show_status)

    check = commands.add_parser(
        "check", help="is this person, vehicle or document flagged? (exit 0: hit, 1: no hit)"
    )
    _store_options(check)
    what = check.add_mutually_exclusive_group(required=True)
    what.add_argument("--plate", help="registration plate (case, spaces and dashes ignored)")
    what.add_argument("--vin", help="vehicle identification number")
    what.add_argument(
        "--name", help="a person's name, any spelling, order or script (one typo is tolerated)"
    )
    what.add_argument("--document", help="identity document number")
    check.add_argument("--dob", help="date of birth YYYY-MM-DD (with --name)")
    check.add_argument(
        "--officer", help="who is searching, for the consultation log (default: the OS user)"
    )
    check.set_defaults(handler=run_check)

    listing = commands.add_parser("list", help="list the active alerts")
    _store_options(listing)
    listing.set_defaults(handler=run_list)

    from border_exchange.cli import post_web  # the web page, accounts and consultation log

    post_web.register(commands)

    from border_exchange.cli import post_hits  # the hit procedure at the post

    post_hits.register(commands)


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, type=Path, help="SQLite store file")
    parser.add_argument("--lang", choices=LANGUAGES, help="labels in fr or en (default: locale)")


def _lang(args: argparse.Namespace) -> Lang:
    chosen: Lang | None = args.lang
    return chosen or language_from_environment(os.environ)


def _open_existing(path: Path) -> PostStore:
    if not path.exists():
        raise ConfigError(f"no post store at {path} (run 'border-exchange post run' first)")
    return PostStore.open(path)


def run_post(args: argparse.Namespace) -> int:
    """Consume until interrupted (SIGINT or SIGTERM), or with ``--once`` catch up and exit."""
    participant: str = args.participant
    if not is_participant_id(participant):
        raise ConfigError(f"--participant: {participant!r} is not a participant id")
    if not is_role_name(args.post):
        raise ConfigError(f"--post: {args.post!r} must be lower-case letters, digits, hyphens")
    partners = tuple(p.strip() for p in (args.partners or "").split(",") if p.strip())
    for partner in partners:
        if not is_participant_id(partner):
            raise ConfigError(f"--from: {partner!r} is not a participant id")
    if args.send_hits_every <= 0:
        raise ConfigError(
            f"--send-hits-every: {args.send_hits_every:g} must be a positive number of seconds"
        )
    configure_from(args)
    settings = kafka_settings_from_file(args.config)
    policy = load_retention(args.retention) if args.retention else DEFAULT_POLICY
    config = PostConfig(participant, args.post, partners, grace=policy.grace)
    passphrase = passphrase_from_env_or_prompt() if args.decryption_keys else b""
    private_keys = [load_encryption_key(path, passphrase) for path in args.decryption_keys]

    if args.once and args.timeout <= 0:
        raise ConfigError(f"--timeout: {args.timeout:g} must be a positive number of seconds")

    async def run() -> CatchUp | None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        with PostStore.open(args.db) as store:
            # The last valid governed store is kept in the post's own database: an
            # ungoverned, older or under-signed one handed over at a restart is refused.
            trust = load_kept(args.trust, store)
            agreements = AgreementTopic(settings, trust, participant)
            post = BorderPost(settings, config, store, trust, agreements, private_keys)
            if args.once:
                done = await post.catch_up(args.timeout)
                # Then the queued hit reports go, and the answers to those sent come back.
                with HitQueue(args.db) as queue:
                    await _hits_once(settings, queue, participant, args.post, trust)
                return done
            async with contextlib.AsyncExitStack() as stack:
                if args.metrics_port:
                    url = await stack.enter_async_context(
                        serve_metrics(post.metrics, args.metrics_host, args.metrics_port)
                    )
                    log.info("post.metrics", url=url)
                # The post's queued hit reports go out beside the feeds, through the same
                # sender as 'post send-hits'.
                queue = stack.enter_context(HitQueue(args.db))
                sender = asyncio.create_task(
                    hits.keep_sending(
                        settings, queue, participant, stop, every=args.send_hits_every,
                        collect=lambda: hits.collect_awaited(
                            settings, queue, participant, args.post, trust
                        ),
                    )
                )  # fmt: skip
                # A sender that fails (its store unreadable) stops the post, loudly.
                sender.add_done_callback(lambda _: stop.set())
                try:
                    await post.run(stop)
                finally:
                    stop.set()
                    await sender
        return None

    done = asyncio.run(run())
    return EXIT_CAUGHT_UP if done is None else _caught_up(done)


async def _hits_once(
    settings: KafkaSettings, queue: HitQueue, participant: str, post: str, trust: TrustStore
) -> None:
    """``--once``: send the queued hit reports, fetch the answers awaited; say what it did.
    What cannot go now stays queued for the next run."""
    result = await hits.send_queued(settings, queue, participant)
    if result.sent or result.left:
        print_sent(result)
    try:
        new = await hits.collect_awaited(settings, queue, participant, post, trust)
    except KafkaError as exc:
        print(f"acknowledgements not fetched: {exc}")
        return
    if new:
        print(f"{new} acknowledgement(s) of this post's hit reports received ('post hits')")


def _caught_up(done: CatchUp) -> int:
    """Report a catch-up; its exit code tells success, a healed gap and an unhealed one apart."""
    applied = done.applied
    print(
        f"caught up: {applied.stored} stored, {applied.cancelled} cancelled, "
        f"{applied.stale} already held, {applied.rejected} refused"
    )
    for gap in done.gaps:
        print(f"gap: {gap.describe()}")
    for feed in done.unseen:
        print(f"not read: {feed} (not in the cluster's metadata; alerts may be missing)")
    if done.unseen:
        return EXIT_GAP_NOT_HEALED
    if not done.gaps:
        return EXIT_CAUGHT_UP
    return EXIT_GAP_HEALED if done.healed else EXIT_GAP_NOT_HEALED


def show_status(args: argparse.Namespace) -> int:
    """Print the last sync time, each feed's position and lag, and the counts."""
    lang = _lang(args)
    with _open_existing(args.db) as store:
        status = store.status()
        keys_needed = store.keys_needed()
    print(f"{label(lang, 'last_sync')}: {when(status.last_sync, lang)}")
    print(f"{label(lang, 'lag')}: {'-' if status.lag is None else status.lag}")
    print(label(lang, "active_alerts", count=status.active))
    print(f"{label(lang, 'rejected')}: {status.rejected}")
    for feed in status.feeds:
        end = "-" if feed.end_offset is None else str(feed.end_offset)
        lag = "-" if feed.lag is None else str(feed.lag)
        print(
            f"  {label(lang, 'feed')} {feed.topic}/{feed.partition}: "
            f"{label(lang, 'next_offset')} {feed.next_offset}, {label(lang, 'end_offset')} {end}, "
            f"{label(lang, 'lag')} {lag}"
        )
    for gap in status.gaps:
        print(f"  gap {gap.describe()}")
    for key_id, count in keys_needed.items():
        print("  " + label(lang, "key_needed", key_id=key_id, count=count))
    return 0


def _section_lines(name: str, content: Mapping[str, Any]) -> list[str]:
    if name == "photo":
        size = len(str(content.get("data") or "")) * 3 // 4
        return [f"      {content.get('media_type')}, ~{size} bytes"]
    return [
        f"      {field}: {content_text(value)}"
        for field, value in content.items()
        if value not in (None, [], "")
    ]


def render(alert: StoredAlert, lang: Lang) -> list[str]:
    """The lines describing one alert: labels in ``lang``, content as the origin wrote it."""
    warnings = ", ".join(label(lang, m) for m in alert.warning_markers) or label(lang, "none")
    lines = [
        f"{label(lang, alert.alert_type.value)} ({alert.alert_type.value}) - "
        f"{label(lang, 'origin')}: {alert.origin} - {label(lang, 'alert')} {alert.alert_id}, "
        f"{label(lang, 'version')} {alert.version}",
        f"  {label(lang, 'action_on_hit')}: {label(lang, alert.action_on_hit)} "
        f"({alert.action_on_hit})",
        f"  {label(lang, 'warnings')}: {warnings}",
        f"  {label(lang, 'handling')}: {alert.handling_code}  "
        f"{label(lang, 'priority')}: {label(lang, alert.priority)}",
        f"  {label(lang, 'issued_at')}: {when(alert.issued_at, lang)}  "
        f"{label(lang, 'expires_at')}: {when(alert.expires_at, lang)}",
        f"  {label(lang, 'sections_received')}: "
        + (", ".join(label(lang, s) for s in alert.sections) or label(lang, "none")),
    ]
    if alert.withheld:
        lines.append(
            f"  {label(lang, 'sections_withheld')}: "
            + ", ".join(label(lang, s) for s in alert.withheld)
        )
    for name, content in alert.sections.items():
        lines.append(f"    [{label(lang, name)}]")
        lines.extend(_section_lines(name, content))
    return lines


def run_check(args: argparse.Namespace) -> int:
    """Look the person, vehicle or document up in the store; 0 on a hit, 1 otherwise.

    The search is logged in the post's consultation log, whatever its outcome.
    """
    lang = _lang(args)
    if args.dob is not None and args.name is None:
        raise ConfigError("--dob narrows a --name search")
    kind = next(k for k in SearchKind if getattr(args, k.value) is not None)
    officer = args.officer or f"cli:{getpass.getuser()}"
    with _open_existing(args.db) as store, OfficerDB(officers_path(args.db)) as log:
        outcome = post_search.search(
            store, log, officer=officer, channel="cli", kind=kind.value,
            text=getattr(args, kind.value), dob=args.dob,
        )  # fmt: skip
    if outcome.problem is not None:
        raise ConfigError(f"--{kind.value}: {label(lang, outcome.problem.value)}")
    if not outcome.found:
        print(label(lang, "no_hit"))
        return 1
    print(f"{label(lang, 'hit')}: {label(lang, 'hits', count=len(outcome.found))}")
    for number, found in enumerate(outcome.found, start=1):
        lines = render(found.alert, lang)
        print(f"[{number}] {lines[0]}")
        print(f"  {label(lang, 'why')} ({label(lang, 'score')} {found.score:.2f}):")
        for line in post_search.explain(found, kind, lang):
            print(f"    {line}")
        for line in lines[1:]:
            print(line)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """List every active alert, one line each."""
    lang = _lang(args)
    with _open_existing(args.db) as store:
        alerts = store.active()
    print(label(lang, "active_alerts", count=len(alerts)))
    for alert in alerts:
        warnings = ",".join(alert.warning_markers) or "-"
        print(
            f"{alert.origin}\t{alert.alert_id}\tv{alert.version}\t{alert.alert_type.value}\t"
            f"{alert.action_on_hit}\t{warnings}\t{when(alert.expires_at, lang)}"
        )
    return 0
