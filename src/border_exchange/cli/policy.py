"""``border-exchange policy``: check an agreement set, explain what it decides for an alert."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from border_exchange.adapters.agreement_files import validate_agreements
from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.domain.agreements import check_agreement_set, parse_agreement_set
from border_exchange.domain.catalog import AlertType, HandlingCode, Operation
from border_exchange.domain.policy import Basis, Deliver, PolicyIndex, PolicyInput, decide
from border_exchange.errors import ConfigError, PolicyError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy check`` and ``policy explain``."""
    policy = subparsers.add_parser("policy", help="check agreement sets, explain decisions")
    commands = policy.add_subparsers(
        title="policy commands", metavar="POLICY_COMMAND", required=True
    )

    check = commands.add_parser(
        "check",
        help="report every problem of an agreement set; exit 1 if there is any",
        description=(
            "Reports unknown participants, overlapping agreements for the same pair and "
            "period, unknown types and sections, contradictory dates and malformed fields."
        ),
    )
    check.add_argument("agreements", type=Path, help="agreement set YAML file")
    check.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    check.set_defaults(handler=check_command)

    explain = commands.add_parser(
        "explain",
        help="print, for each participant, deliver (which sections) or deny (why)",
    )
    explain.add_argument("--agreements", required=True, type=Path, help="agreement set YAML")
    explain.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    explain.add_argument("--from", dest="origin", required=True, help="origin participant id")
    explain.add_argument(
        "--type", dest="alert_type", required=True, choices=[t.value for t in AlertType]
    )
    explain.add_argument(
        "--handling",
        default=HandlingCode.H0.value,
        choices=[code.value for code in HandlingCode],
        help="handling code of the alert (default H0)",
    )
    explain.add_argument("--at", help="decision time, ISO 8601 with zone (default: now)")
    explain.add_argument(
        "--operation",
        default=Operation.CREATE.value,
        choices=[op.value for op in Operation],
        help="lifecycle step (default CREATE)",
    )
    explain.add_argument(
        "--history",
        default="",
        help="comma-separated participants that received an earlier version",
    )
    explain.set_defaults(handler=explain_command)


def _time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--at: not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ConfigError("--at: give a time zone, e.g. 2026-06-01T12:00:00Z")
    return parsed


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read agreement set {path}: {exc.strerror}") from exc


def check_command(args: argparse.Namespace) -> int:
    """Print each problem as ``agreement-id: path: message [CODE]``; 1 if any, else 0."""
    participants = load_trust_store(args.trust).participants
    aset = parse_agreement_set(_read(args.agreements))
    problems = check_agreement_set(aset, participants)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {args.agreements}")
        return 1
    print(f"OK: {len(aset.agreements)} agreements, label {aset.label}, digest {aset.digest}")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    """Print one row per participant: deliver and the sections kept, or deny and the reason."""
    participants = load_trust_store(args.trust).participants
    aset = validate_agreements(_read(args.agreements), participants)
    at = _time(args.at)
    alert = PolicyInput(
        origin=args.origin,
        alert_type=AlertType(args.alert_type),
        handling_code=HandlingCode(args.handling),
        operation=Operation(args.operation),
        alert_id="explain",
    )
    history = frozenset(name.strip() for name in args.history.split(",") if name.strip())
    decision = decide(alert, at, PolicyIndex.build(aset, participants), history)
    print(f"agreement set {aset.label}  digest {aset.digest}")
    print(
        f"{alert.operation} {alert.alert_type} from {alert.origin}, handling "
        f"{alert.handling_code}, at {at.isoformat()}"
    )
    width = max(len(name) for name in decision.outcomes)
    for name, outcome in decision.outcomes.items():
        if isinstance(outcome, Deliver):
            sections = ",".join(outcome.sections) or "(no sections)"
            basis = "earlier recipient" if outcome.basis is Basis.EARLIER_RECIPIENT else ""
            if outcome.agreement_id is not None:
                basis = "; ".join(filter(None, (basis, f"agreement {outcome.agreement_id}")))
            print(f"{name:<{width}}  deliver  {sections}  ({basis})")
        else:
            print(f"{name:<{width}}  deny     {outcome.reason}  {outcome.detail}")
    return 0
