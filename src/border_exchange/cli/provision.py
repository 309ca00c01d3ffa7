"""``border-exchange provision``: topics, credentials and ACLs from the trust store."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from border_exchange.adapters.trust_file import load_trust_store
from border_exchange.domain.retention import DEFAULT_POLICY
from border_exchange.services.provisioner import (
    DEFAULT_SECRETS_NAME,
    load_admin_settings,
    load_retention,
    provision,
)

if TYPE_CHECKING:
    from border_exchange.cli.commands import Commands


def register(subparsers: Commands) -> None:
    """Add ``provision``."""
    parser = subparsers.add_parser(
        "provision",
        help="create topics, SCRAM credentials and ACLs that follow from the trust store",
        description=(
            "Bring the Kafka cluster in line with the trust store: topics, one SCRAM principal "
            "per gateway, post, router and auditor, and the ACLs between them. Suspended or "
            "removed participants lose their credentials and ACLs. Running it again changes "
            "nothing that is already right."
        ),
    )
    parser.add_argument("--trust", required=True, type=Path, help="trust store YAML file")
    parser.add_argument(
        "--admin-config",
        required=True,
        type=Path,
        help="YAML file with the administrator's 'kafka:' connection (BX_KAFKA_* override it)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument(
        "--secrets",
        type=Path,
        help=f"credentials file, mode 0600 (default: {DEFAULT_SECRETS_NAME} beside the config)",
    )
    parser.add_argument(
        "--retention",
        type=Path,
        help=(
            "YAML file of retention settings (feed, grace, audit, ...; see docs/operations.md); "
            "default: the built-in policy. A changed policy is applied to existing topics."
        ),
    )
    parser.set_defaults(handler=run_provision)


def run_provision(args: argparse.Namespace) -> int:
    """Print the plan, apply it unless ``--dry-run``, and say what was done."""
    trust = load_trust_store(args.trust)
    settings = load_admin_settings(args.admin_config)
    secrets: Path = args.secrets or args.admin_config.parent / DEFAULT_SECRETS_NAME
    policy = load_retention(args.retention) if args.retention else DEFAULT_POLICY
    result = asyncio.run(provision(trust, settings, secrets, dry_run=args.dry_run, policy=policy))
    for line in result.plan.lines():
        print(line)
    summary = result.plan.summary()
    if args.dry_run:
        print(f"dry run: {summary}; nothing was changed")
    elif result.applied:
        print(f"applied: {summary}; credentials in {result.secrets_file}")
    else:
        print(summary)
    return 0
