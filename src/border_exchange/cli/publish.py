"""``border-exchange publish`` and ``cancel``: a national service's gateway on the command line.

Alerts come from JSON files (one alert or a list), YAML files (one or more documents,
each an alert or a list) or JSON Lines files (``.jsonl``, one alert a line). A batch
publishes nothing unless every alert passes, unless ``--skip-invalid`` is given; the
key's passphrase comes from ``BX_KEY_PASSPHRASE`` or a prompt, never from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from border_exchange.adapters.agreement_files import section_recipients
from border_exchange.adapters.config_file import kafka_settings_from_file
from border_exchange.adapters.keyfiles import load_private_key, passphrase_from_env_or_prompt
from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.catalog import Operation, is_participant_id
from border_exchange.domain.recipients import SectionRecipients
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import ConfigError, ValidationError
from border_exchange.services.gateway import Gateway, Receipt

if TYPE_CHECKING:
    from border_exchange.cli.commands import Commands


def register(subparsers: Commands) -> None:
    """Add ``publish`` and ``cancel``."""
    publish = subparsers.add_parser(
        "publish",
        help="sign and publish alerts from JSON, YAML or JSON Lines files",
        description=(
            "Publish alerts as one transaction: nothing is published unless every alert is "
            "valid (or --skip-invalid). An alert with the id of an earlier one updates it. "
            "The key passphrase is read from BX_KEY_PASSPHRASE or prompted for."
        ),
    )
    alert_options(publish)
    publish.add_argument("files", nargs="+", type=Path, metavar="FILE", help="alert files")
    publish.add_argument(
        "--skip-invalid", action="store_true", help="publish the valid alerts, report the others"
    )
    publish.add_argument("--report", type=Path, help="write a JSON report of the batch here")
    publish.set_defaults(handler=run_publish)

    cancel = subparsers.add_parser("cancel", help="publish the cancellation of an alert")
    alert_options(cancel)
    cancel.add_argument("alert_id", metavar="ALERT_ID")
    cancel.add_argument("--reason", required=True, help="why the alert is withdrawn")
    cancel.set_defaults(handler=run_cancel)


def signing_options(parser: argparse.ArgumentParser) -> None:
    """``--as``, ``--key``, ``--trust``, ``--key-id`` and ``--config`` of a signing command."""
    parser.add_argument("--as", dest="participant", required=True, help="participant id, e.g. CAF")
    parser.add_argument("--key", required=True, type=Path, help="encrypted private key file")
    parser.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    parser.add_argument("--key-id", help="key id (default: the participant's current key)")
    parser.add_argument(
        "--config", type=Path, help="YAML file with a 'kafka' mapping (BX_KAFKA_* override it)"
    )


def alert_options(parser: argparse.ArgumentParser) -> None:
    """``signing_options`` and ``--encrypt-for`` of a command that publishes alerts."""
    signing_options(parser)
    parser.add_argument(
        "--encrypt-for",
        type=Path,
        metavar="AGREEMENTS",
        help="seal every section for exactly the partners the signed agreement set in this "
        "file permits (their encryption keys from the trust store); default: in clear",
    )


@dataclass(frozen=True)
class Item:
    """One alert read from a file, or the problems that kept it from being one."""

    location: str
    alert: AlertInput | None
    problems: tuple[str, ...] = ()


def _items_of(location: str, value: object) -> list[tuple[str, object]]:
    if isinstance(value, list):
        return [(f"{location}[{index}]", entry) for index, entry in enumerate(value)]
    return [(location, value)]


def read_alert_files(paths: list[Path]) -> list[Item]:
    """Every alert in ``paths``, each validated, with its file location."""
    raw: list[tuple[str, object]] = []
    items: list[Item] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            if path.suffix in (".jsonl", ".ndjson"):
                for number, line in enumerate(text.splitlines(), start=1):
                    if line.strip():
                        raw.append((f"{path}:{number}", json.loads(line)))
            elif path.suffix in (".yaml", ".yml"):
                documents = [d for d in yaml.safe_load_all(text) if d is not None]
                for index, document in enumerate(documents):
                    where = f"{path}#{index + 1}" if len(documents) > 1 else str(path)
                    raw.extend(_items_of(where, document))
            else:
                raw.extend(_items_of(str(path), json.loads(text)))
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            items.append(Item(str(path), None, (f"(file): not valid JSON or YAML: {exc}",)))
    for location, value in raw:
        if not isinstance(value, Mapping):
            items.append(Item(location, None, ("(alert): must be a mapping",)))
            continue
        try:
            items.append(Item(location, parse_alert(value)))
        except ValidationError as exc:
            items.append(Item(location, None, exc.problems or (str(exc),)))
    return items


def _recipients(args: argparse.Namespace, trust: TrustStore) -> SectionRecipients | None:
    return None if args.encrypt_for is None else section_recipients(args.encrypt_for, trust)


def signing_of(args: argparse.Namespace) -> tuple[Any, str, TrustStore]:
    """The signing key, its id and the trust store that ``signing_options`` named."""
    participant: str = args.participant
    if not is_participant_id(participant):
        raise ConfigError(f"--as: {participant!r} is not a participant id")
    trust = load_trust_store(args.trust)
    key_id: str = args.key_id or trust.current_key(participant, datetime.now(UTC)).key_id
    key = load_private_key(args.key, passphrase_from_env_or_prompt())
    return key, key_id, trust


_DONE = {Operation.CREATE: "created", Operation.UPDATE: "updated", Operation.CANCEL: "cancelled"}


def _print_receipt(receipt: Receipt) -> None:
    print(
        f"{_DONE[receipt.operation]} {receipt.alert_id} version {receipt.version}: "
        f"message {receipt.message_id}, partition {receipt.partition}, offset {receipt.offset}"
    )


def run_publish(args: argparse.Namespace) -> int:
    """Validate every alert, then publish them in one transaction; 1 if any was rejected."""
    items = read_alert_files(args.files)
    if not items:
        raise ConfigError("no alert in the files given")
    key, key_id, trust = signing_of(args)
    settings = kafka_settings_from_file(args.config)

    async def publish() -> tuple[list[Receipt], list[Item]]:
        async with Gateway(
            settings, args.participant, key, key_id, trust, recipients=_recipients(args, trust)
        ) as gateway:
            parsed = [item for item in items if item.alert is not None]
            checks = gateway.check([item.alert for item in parsed if item.alert is not None])
            rejected = [item for item in items if item.alert is None]
            rejected += [
                Item(item.location, None, problems)
                for item, problems in zip(parsed, checks, strict=True)
                if problems
            ]
            if rejected and not args.skip_invalid:
                return [], rejected
            valid = [
                item.alert
                for item, problems in zip(parsed, checks, strict=True)
                if not problems and item.alert is not None
            ]
            return await gateway.publish_batch(valid), rejected

    receipts, rejected = asyncio.run(publish())
    for receipt in receipts:
        _print_receipt(receipt)
    for item in rejected:
        for problem in item.problems:
            print(f"{item.location}: {problem}", file=sys.stderr)
    if rejected and not args.skip_invalid:
        print(
            f"border-exchange: {len(rejected)} invalid alert(s); nothing published "
            "(use --skip-invalid to publish the valid ones)",
            file=sys.stderr,
        )
    if args.report is not None:
        report = {
            "published": [asdict(r) | {"operation": r.operation.value} for r in receipts],
            "rejected": [{"location": i.location, "problems": list(i.problems)} for i in rejected],
        }
        args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 1 if rejected else 0


def run_cancel(args: argparse.Namespace) -> int:
    """Publish the cancellation of ``ALERT_ID``."""
    key, key_id, trust = signing_of(args)
    settings = kafka_settings_from_file(args.config)

    async def cancel() -> Receipt:
        async with Gateway(
            settings, args.participant, key, key_id, trust, recipients=_recipients(args, trust)
        ) as gateway:
            return await gateway.cancel(args.alert_id, args.reason)

    _print_receipt(asyncio.run(cancel()))
    return 0
