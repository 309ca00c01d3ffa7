"""The ``border-exchange`` command: one parser, one subcommand family per module.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its
subcommands and sets ``handler`` (a function of the parsed arguments returning
the exit code). Errors of the package are printed as one line, never as a trace.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from border_exchange import __version__
from border_exchange.errors import BorderExchangeError

COMMANDS: tuple[str, ...] = (
    "border_exchange.cli.audit",
    "border_exchange.demo.cli",
    "border_exchange.cli.deploy",
    "border_exchange.cli.dev",
    "border_exchange.cli.gateway",
    "border_exchange.cli.keys",
    "border_exchange.cli.policy",
    "border_exchange.cli.post",
    "border_exchange.cli.provision",
    "border_exchange.cli.publish",
    "border_exchange.cli.router",
)
"""Modules that add subcommands, in the order ``--help`` lists them."""


class _Registrar(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        """Add this module's subcommands."""


Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="border-exchange",
        description=(
            "Cross-border police alert exchange: gateways publish signed alerts, the router "
            "delivers them under bilateral agreements, border posts search them offline, "
            "auditors prove what went where."
        ),
    )
    parser.add_argument("--version", action="version", version=f"border-exchange {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        cast(_Registrar, importlib.import_module(name)).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = cast(Handler | None, getattr(args, "handler", None))
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except BorderExchangeError as exc:
        print(f"border-exchange: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("border-exchange: interrupted", file=sys.stderr)
        return 130
