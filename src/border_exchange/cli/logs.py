"""``--log-format`` and ``--log-level`` for every long-running command, and the logging they set.

JSON lines (one object per event, on stderr) unless told otherwise; readable lines by
default only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from border_exchange.bootstrap import configure_logging

LOG_FORMATS: Final = ("json", "console")


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--log-format``, ``--log-level`` and the older ``--console-log`` to ``parser``."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="json (one object per line) or console (readable); "
        "default: console on a terminal, json otherwise",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--console-log",
        dest="log_format",
        action="store_const",
        const="console",
        help="the same as --log-format console",
    )


def log_format(args: argparse.Namespace) -> str:
    """The format asked for, or the default for where stderr goes."""
    chosen: str | None = args.log_format
    if chosen is not None:
        return chosen
    return "console" if sys.stderr.isatty() else "json"


def configure_from(args: argparse.Namespace) -> None:
    """Set up logging as the command's options say."""
    configure_logging(args.log_level, json=log_format(args) == "json")
