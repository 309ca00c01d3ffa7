"""A command that has commands of its own (``post run``, ``keys generate``, ``gateway token add``).

Each group is a parser with its help line whose commands go in subparsers titled
``<name> commands``; a command is required, and the usage shows it as ``<NAME>_COMMAND``
unless the group names its own metavar.
"""

from __future__ import annotations

import argparse
from typing import Any, TypeAlias

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
