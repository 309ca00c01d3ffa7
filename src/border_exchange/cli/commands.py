"""A command that has commands of its own (``post run``, ``keys generate``, ``gateway token add``).

Each group is a parser with its help line whose commands go in subparsers titled
``<name> commands``; a command is required, and the usage shows it as ``<NAME>_COMMAND``
unless the group names its own metavar. A long-running service configured by one YAML
file (``router run``, ``gateway serve``) is added with ``config_command``.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from pydantic import BaseModel

from border_exchange.bootstrap import config_keys_help
from border_exchange.cli.logs import add_log_options

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def command_group(
    commands: Commands,
    name: str,
    help: str,  # argparse's own keyword
    *,
    metavar: str | None = None,
    required: bool = True,
    **parser_options: Any,
) -> Commands:
    """Add command ``name`` to ``commands``; the subparsers its own commands go in."""
    group = commands.add_parser(name, help=help, **parser_options)
    return group.add_subparsers(
        title=f"{name} commands",
        metavar=metavar or f"{name.upper()}_COMMAND",
        required=required,
    )


def config_command(
    commands: Commands,
    name: str,
    help: str,  # argparse's own keyword
    *,
    description: str,
    config: type[BaseModel],
    env_prefix: str,
    example_key: str,
    handler: Callable[[argparse.Namespace], int],
    what: str,
) -> argparse.ArgumentParser:
    """Add command ``name`` of a service configured by one YAML file (``--config``) of
    ``config``'s keys, which ``env_prefix`` variables override; its help lists every key."""
    variables = (
        f"BX_KAFKA_<KEY> and {env_prefix}<KEY> variables (for example "
        f"{env_prefix}{example_key.upper()}) override the file; the signing key's "
        "passphrase comes from BX_KEY_PASSPHRASE or a prompt."
    )
    parser = commands.add_parser(
        name,
        help=help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(description, width=79),
        epilog=(
            "The config file is YAML: a 'kafka' mapping (bootstrap, security_protocol,\n"
            "username, password) and these keys (paths relative to the file):\n"
            f"{config_keys_help(config)}\n\n" + textwrap.fill(variables, width=79)
        ),
    )
    parser.add_argument("--config", required=True, type=Path, help=f"{what} configuration (YAML)")
    add_log_options(parser)
    parser.set_defaults(handler=handler)
    return parser
