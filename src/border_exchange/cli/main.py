"""The ``border-exchange`` command: one parser, one subcommand family per module.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its
subcommands and sets ``handler`` (a function of the parsed arguments returning
the exit code). Errors of the package are printed as one line, never as a trace.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from border_exchange.errors import BorderExchangeError
from border_exchange.interpreter import without_pydantic_plugins

if TYPE_CHECKING:
    from border_exchange.cli.commands import Commands

COMMANDS: Mapping[str, tuple[str, ...]] = {
    "border_exchange.cli.audit": ("audit",),
    "border_exchange.demo.cli": ("demo",),
    "border_exchange.cli.deploy": ("deploy",),
    "border_exchange.cli.desk": ("desk",),
    "border_exchange.cli.dev": ("dev",),
    "border_exchange.cli.gateway": ("gateway",),
    "border_exchange.cli.keys": ("keys",),
    "border_exchange.cli.policy": ("policy",),
    "border_exchange.cli.post": ("post",),
    "border_exchange.cli.provision": ("provision",),
    "border_exchange.cli.publish": ("publish", "cancel"),
    "border_exchange.cli.router": ("router",),
}
"""Modules that add subcommands, in the order ``--help`` lists them, with the commands each adds."""


class _Version(argparse.Action):
    """``--version``: the installed version, read only when asked for (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: str | None) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=kwargs.get("help")
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from border_exchange import __version__

        print(f"border-exchange {__version__}")
        parser.exit()


class _Registrar(Protocol):
    def register(self, subparsers: Commands) -> None:
        """Add this module's subcommands."""


Handler = Callable[[argparse.Namespace], int]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: of ``command`` alone when a module adds it, else of every command.

    Importing every command's module (the HTTP gateway, the post's page, the demo) costs
    a router restarted after a crash more CPU than its own start: a command run imports
    only its own module.
    """
    parser = argparse.ArgumentParser(
        prog="border-exchange",
        description=(
            "Cross-border police alert exchange: gateways publish signed alerts, the router "
            "delivers them under bilateral agreements, border posts search them offline, "
            "auditors prove what went where."
        ),
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    modules = [name for name, commands in COMMANDS.items() if command in commands]
    for name in modules or COMMANDS:
        cast(_Registrar, importlib.import_module(name)).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    without_pydantic_plugins()  # before any command's models are built
    parser = build_parser(argv[0] if argv else None)
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
