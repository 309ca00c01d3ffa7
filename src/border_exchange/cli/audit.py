"""``border-exchange audit``: replay a period and prove what went where; list disclosures."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from border_exchange.adapters.agreement_files import AgreementHistory
from border_exchange.adapters.config_file import kafka_settings_from_file
from border_exchange.adapters.trust_file import load_trust_store, read_governed
from border_exchange.cli.commands import Commands, command_group
from border_exchange.domain.audit_values import Window
from border_exchange.domain.times import aware_time
from border_exchange.errors import ConfigError
from border_exchange.interpreter import tuned_for_replay
from border_exchange.services.auditor import (
    Progress,
    ReplayRequest,
    audit_entries,
    replay,
    summary_lines,
    verdict_json,
    write_report,
)


def register(subparsers: Commands) -> None:
    """Add ``audit replay`` and ``audit disclosures``."""
    commands = command_group(subparsers, "audit", "replay the logs, list disclosures")

    run = commands.add_parser(
        "replay",
        help="verify a period end to end; exit 1 on any violation",
        description=(
            "Reads the audit trail, the outboxes, the partner feeds and the quarantine of a "
            "period and checks, without trusting the router, that every message was delivered "
            "as permitted or refused for a stated reason, and that no record was altered."
        ),
    )
    _common(
        run,
        trust_help="a governed trust store the period was routed under; repeat it "
        "for each store the router took during the period (each record is checked under "
        "the one in force when it was decided)",
        many=True,
    )
    run.add_argument("--participant", help="only the alerts this participant sent or received")
    run.add_argument("--report", type=Path, help="write the JSON report to this file")
    run.add_argument(
        "--agreements-history",
        type=Path,
        help="directory of recorded agreement sets (besides the agreements topic)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.set_defaults(handler=replay_command)

    show = commands.add_parser(
        "disclosures",
        help="everything a participant's alerts disclosed: to whom, which sections, under what",
    )
    _common(show)
    show.add_argument("--participant", required=True, help="the origin participant id")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(handler=disclosures_command)


def _common(
    parser: argparse.ArgumentParser, trust_help: str = "trust store YAML file", many: bool = False
) -> None:
    parser.add_argument("--from", dest="start", required=True, help="ISO 8601 time, inclusive")
    parser.add_argument("--to", dest="end", required=True, help="ISO 8601 time, exclusive")
    parser.add_argument(
        "--trust", required=True, type=Path, help=trust_help, action="append" if many else "store"
    )
    parser.add_argument(
        "--config", type=Path, help="YAML file with a 'kafka' mapping (BX_KAFKA_* override it)"
    )


def _window(args: argparse.Namespace) -> Window:
    start, end = aware_time(args.start, "--from"), aware_time(args.end, "--to")
    if end <= start:
        raise ConfigError("--to must be after --from")
    return Window(start, end)


def replay_command(args: argparse.Namespace) -> int:
    """Run ``audit replay``."""
    window = _window(args)
    # The auditor takes only governed stores, and checks that the router routed under them,
    # each taken as their governance allows when the router took it.
    governance = [read_governed(path) for path in args.trust]
    latest = max(governance, key=lambda g: g.serial)
    history = AgreementHistory(args.agreements_history) if args.agreements_history else None
    progress = Progress(every=1e9) if args.quiet else Progress()
    with tuned_for_replay():
        verdict = asyncio.run(
            replay(
                kafka_settings_from_file(args.config),
                latest.store,
                ReplayRequest(window, participant=args.participant),
                history=history,
                progress=progress,
                governance=governance,
            )
        )
    if args.report is not None:
        write_report(args.report, verdict_json(verdict))
    print("\n".join(summary_lines(verdict)))
    return 0 if verdict.clean else 1


def disclosures_command(args: argparse.Namespace) -> int:
    """Run ``audit disclosures``."""
    window = _window(args)
    trust = load_trust_store(args.trust)
    found, problems = asyncio.run(
        audit_entries(kafka_settings_from_file(args.config), trust, args.participant, window)
    )
    if args.format == "json":
        print(
            json.dumps(
                {"disclosures": [d.as_json() for d in found], "chain_problems": problems},
                indent=2,
            )
        )
    else:
        print(
            f"{'time':20} {'message':24} {'alert':24} {'ver':>3} {'type':15} "
            f"{'recipient':11} {'agreement':16} sections"
        )
        for d in found:
            when = d.recorded_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            print(
                f"{when:20} {d.message_id:24} {d.alert_id:24} {d.version:>3} {d.alert_type:15} "
                f"{d.recipient:11} {d.agreement_id or '-':16} {', '.join(d.sections) or '-'}"
            )
        print(f"{len(found)} disclosure(s) of {args.participant}'s alerts")
        for problem in problems:
            print(f"warning: {problem}")
    return 1 if problems else 0
