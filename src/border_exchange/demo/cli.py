"""``border-exchange demo``: the whole exchange end to end on a local Kafka, then stop it all."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from border_exchange.demo.dates import default_agreements
from border_exchange.demo.run import run_demo
from border_exchange.demo.story import DemoOptions
from border_exchange.domain.labels import LANGUAGES

if TYPE_CHECKING:
    from border_exchange.cli.commands import Commands


def register(subparsers: Commands) -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="run the exchange end to end on a local Kafka, then stop everything",
        description=(
            "Starts a local Kafka; makes keys and a trust store for CAF, COD, SSD and "
            "UN-MONUSCO; provisions topics, users and ACLs; runs the router, two border posts "
            "and four gateways publishing French and English alerts under agreements that "
            "differ by pair and direction; looks alerts up at the posts (one lookup with "
            "Kafka stopped); cancels an alert; replays the audit trail; prints who received "
            "what and why. Everything it starts is stopped at the end."
        ),
    )
    demo.add_argument(
        "--dir",
        type=Path,
        help="work in this new or empty directory (default: a temporary one)",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the directory (keys, credentials, stores, logs, audit report) at the end",
    )
    demo.add_argument(
        "--lang",
        choices=LANGUAGES,
        default="fr",
        help="language of the border posts' screens (default fr, as at the CAF and COD posts)",
    )
    demo.add_argument(
        "--agreements",
        type=Path,
        metavar="FILE",
        help=f"agreement set to run under (default {default_agreements().name} of the examples)",
    )
    demo.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        directory=args.dir, keep=args.keep, lang=args.lang, agreements=args.agreements
    )
    return 0 if run_demo(options).ok else 1
