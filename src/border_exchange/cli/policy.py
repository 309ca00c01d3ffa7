"""``border-exchange policy``: check, sign and combine agreement sets; explain decisions."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pydantic
import yaml
from nacl.signing import SigningKey

from border_exchange.adapters.agreement_files import validate_agreements
from border_exchange.adapters.keyfiles import load_private_key, passphrase_from_env_or_prompt
from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.cli.commands import Commands, command_group
from border_exchange.domain.agreements import (
    AgreementSet,
    AgreementSignature,
    StatementAction,
    StatusStatement,
    add_signed,
    check_agreement_set,
    parse_agreement_set,
)
from border_exchange.domain.catalog import AlertType, HandlingCode, Operation
from border_exchange.domain.consent import (
    Consent,
    SignatureDefect,
    consents,
    sign_agreement,
    sign_statement,
    signature_defects,
)
from border_exchange.domain.policy import Basis, Deliver, PolicyIndex, PolicyInput, decide
from border_exchange.domain.times import aware_time
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import ConfigError, KeyNotValidError, PolicyError


def register(subparsers: Commands) -> None:
    """Add ``policy check``, ``explain``, ``sign``, ``statement`` and ``combine``."""
    commands = command_group(subparsers, "policy", "check agreement sets, explain decisions")

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

    sign = commands.add_parser(
        "sign",
        help="sign, as one party, the agreements of a set it is party to",
        description=(
            "Each service's officer signs on the service's own machine, with the service's "
            "passphrase-protected key (BX_KEY_PASSPHRASE or a prompt). Prints what is signed "
            "and writes the signatures to --out, to be sent to the hub and combined."
        ),
    )
    _signer_arguments(sign)
    sign.add_argument(
        "--agreement",
        action="append",
        dest="only",
        help="sign only this agreement (repeatable; default: every one the party is party to)",
    )
    sign.add_argument("--out", required=True, type=Path, help="signature file to write")
    sign.set_defaults(handler=sign_command)

    state = commands.add_parser(
        "statement",
        help="sign, as one party, a statement that suspends, terminates or resumes an agreement",
        description=(
            "A suspension or termination signed by one party takes effect once combined; "
            "resuming needs a resume statement of each party."
        ),
    )
    _signer_arguments(state)
    state.add_argument("--agreement", required=True, help="the agreement's id")
    state.add_argument(
        "--action", required=True, choices=[action.value for action in StatementAction]
    )
    state.add_argument("--out", required=True, type=Path, help="statement file to write")
    state.set_defaults(handler=statement_command)

    combine = commands.add_parser(
        "combine",
        help="add signature and statement files to an agreement set, checking each",
        description=(
            "Every signature and statement is verified against the trust store first; one "
            "that does not count is named (agreement, party, reason) and nothing is written."
        ),
    )
    combine.add_argument("agreements", type=Path, help="agreement set YAML file")
    combine.add_argument("signatures", type=Path, nargs="+", help="files of 'policy sign'")
    combine.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    combine.add_argument("--out", required=True, type=Path, help="signed agreement set to write")
    combine.set_defaults(handler=combine_command)


def _signer_arguments(parser: argparse.ArgumentParser) -> None:
    """The agreement set, the trust store and the signing party's key, for sign and statement."""
    parser.add_argument("agreements", type=Path, help="agreement set YAML file")
    parser.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    parser.add_argument("--as", dest="party", required=True, help="the signing party's id")
    parser.add_argument("--key", required=True, type=Path, help="the party's encrypted key file")
    parser.add_argument("--key-id", help="key id in the trust store (default: current key)")


def _time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    return aware_time(value, "--at")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read agreement set {path}: {exc.strerror}") from exc


def _print_consent(aset: AgreementSet, consent: Mapping[str, Consent]) -> None:
    """One line per agreement: who signed it, and whether it is in force for want of one."""
    for agreement in aset.agreements:
        granted = consent[agreement.id]
        signed = ", ".join(granted.signed_by) or "nobody"
        if granted.signed_by_both:
            state = f"signed by both; {granted.status}"
            if granted.status_detail:
                state += f" ({granted.status_detail})"
        else:
            state = "NOT IN FORCE: " + "; ".join(
                f"no signature of {d.party}" if d.code is SignatureDefect.MISSING else d.detail
                for d in granted.missing
            )
        print(f"{agreement.id}  digest {granted.digest[:16]}  signed by {signed}  {state}")


def check_command(args: argparse.Namespace) -> int:
    """Print each problem as ``agreement-id: path: message [CODE]``, then who signed each
    agreement; 1 if any problem (a signature that does not count is one), else 0."""
    trust = load_trust_store(args.trust)
    aset = parse_agreement_set(_read(args.agreements))
    problems = [str(p) for p in check_agreement_set(aset, trust.participants)]
    problems += [str(d) for d in signature_defects(aset, trust)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {args.agreements}")
    else:
        print(f"OK: {len(aset.agreements)} agreements, label {aset.label}, digest {aset.digest}")
    _print_consent(aset, consents(aset, trust))
    return 1 if problems else 0


def _signer(args: argparse.Namespace) -> tuple[TrustStore, SigningKey, str, datetime]:
    """The trust store, the party's unlocked key, its key id and the signing time."""
    trust = load_trust_store(args.trust)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        key_id = args.key_id or trust.current_key(args.party, now).key_id
        public = trust.key_for(args.party, key_id, now)
    except KeyNotValidError as exc:
        raise ConfigError(f"--as {args.party}: {exc}") from exc
    key = load_private_key(args.key, passphrase_from_env_or_prompt())
    if bytes(key.verify_key) != public.raw:
        raise ConfigError(
            f"{args.key} is not the private half of key {key_id} of {args.party} in the trust store"
        )
    return trust, key, key_id, now


def _signed_file(entries: list[tuple[str, AgreementSignature | StatusStatement]]) -> str:
    signatures: list[dict[str, object]] = []
    statements: list[dict[str, object]] = []
    for agreement_id, entry in entries:
        item = {"agreement": agreement_id, **entry.model_dump(mode="json")}
        (statements if isinstance(entry, StatusStatement) else signatures).append(item)
    document: dict[str, object] = {"signatures": signatures}
    if statements:
        document["statements"] = statements
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc


def sign_command(args: argparse.Namespace) -> int:
    """Sign each agreement the party is party to (or those named); write the signature file."""
    aset = parse_agreement_set(_read(args.agreements))
    wanted = set(args.only or ())
    chosen = [
        a for a in aset.agreements if args.party in a.parties and (not wanted or a.id in wanted)
    ]
    unknown = wanted - {a.id for a in chosen}
    if unknown:
        raise PolicyError(
            f"{args.party} is not party to, or the set has no, agreement "
            + ", ".join(sorted(unknown))
        )
    if not chosen:
        raise PolicyError(f"{args.party} is party to no agreement of {args.agreements}")
    _, key, key_id, now = _signer(args)
    entries: list[tuple[str, AgreementSignature | StatusStatement]] = []
    for agreement in chosen:
        signature = sign_agreement(agreement, args.party, key_id, key, now)
        entries.append((agreement.id, signature))
        partner = next(p for p in agreement.parties if p != args.party)
        print(
            f"signed {agreement.id} with {partner} ({agreement.status}, digest "
            f"{signature.digest[:16]}) as {args.party}, key {key_id}"
        )
    _write(args.out, _signed_file(entries))
    print(f"wrote {len(entries)} signature(s) to {args.out}")
    return 0


def statement_command(args: argparse.Namespace) -> int:
    """Sign a suspend, terminate or resume statement of one agreement; write it to --out."""
    aset = parse_agreement_set(_read(args.agreements))
    agreement = aset.by_id(args.agreement)
    if args.party not in agreement.parties:
        raise PolicyError(f"{args.party} is not a party of agreement {agreement.id}")
    _, key, key_id, now = _signer(args)
    action = StatementAction(args.action)
    statement = sign_statement(agreement, args.party, action, key_id, key, now)
    _write(args.out, _signed_file([(agreement.id, statement)]))
    print(f"{args.party} signed '{action}' of {agreement.id}; wrote {args.out}")
    return 0


def _entries_of(path: Path) -> list[tuple[str, AgreementSignature | StatusStatement]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read signature file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"signature file {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise PolicyError(f"signature file {path} must be a mapping with 'signatures'")
    entries: list[tuple[str, AgreementSignature | StatusStatement]] = []
    for field, model in (("signatures", AgreementSignature), ("statements", StatusStatement)):
        for index, item in enumerate(document.get(field) or ()):
            where = f"{path}: {field}[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("agreement"), str):
                raise PolicyError(f"{where}: must be a mapping naming its 'agreement'")
            fields = {k: v for k, v in item.items() if k != "agreement"}
            try:
                entries.append((item["agreement"], model.model_validate(fields)))
            except pydantic.ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise PolicyError(
                    f"{where} (agreement {item['agreement']}, party {item.get('party')}): "
                    f"{problems}"
                ) from exc
    return entries


def combine_command(args: argparse.Namespace) -> int:
    """Check every signature and statement of the files, then write the signed set."""
    trust = load_trust_store(args.trust)
    text = _read(args.agreements)
    entries = [entry for path in args.signatures for entry in _entries_of(path)]
    combined = add_signed(text, entries)
    aset = parse_agreement_set(combined)
    defects = signature_defects(aset, trust)
    if defects:
        for defect in defects:
            print(defect)
        print(f"{len(defects)} signature(s) do not count; {args.out} not written")
        return 1
    _write(args.out, combined)
    _print_consent(aset, consents(aset, trust))
    print(f"wrote {args.out}: label {aset.label}, digest {aset.digest}")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    """Print one row per participant: deliver and the sections kept, or deny and the reason."""
    trust = load_trust_store(args.trust)
    participants = trust.participants
    aset = validate_agreements(_read(args.agreements), participants, trust)
    consent = consents(aset, trust)
    at = _time(args.at)
    alert = PolicyInput(
        origin=args.origin,
        alert_type=AlertType(args.alert_type),
        handling_code=HandlingCode(args.handling),
        operation=Operation(args.operation),
        alert_id="explain",
    )
    history = frozenset(name.strip() for name in args.history.split(",") if name.strip())
    decision = decide(alert, at, PolicyIndex.build(aset, participants, consent), history)
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
    print()
    _print_consent(aset, consent)
    return 0
