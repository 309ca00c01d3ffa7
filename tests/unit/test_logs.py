"""Long-running commands log JSON lines unless told otherwise, their libraries' logs included."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from border_exchange.bootstrap import _LIBRARY_LOGS
from border_exchange.cli.logs import add_log_options, configure_from, log_format
from border_exchange.cli.main import build_parser

LONG_RUNNING = (
    ["router", "run"],
    ["gateway", "serve"],
    ["post", "run"],
    ["post", "serve"],
    ["desk", "watch"],
)


@pytest.fixture(autouse=True)
def _restored() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in _LIBRARY_LOGS:
        root.removeHandler(handler)
    _LIBRARY_LOGS.clear()
    root.setLevel(logging.WARNING)


def _options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_log_options(parser)
    return parser.parse_args(argv)


def test_json_by_default_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert log_format(_options()) == "json"
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert log_format(_options()) == "console"
    assert log_format(_options("--log-format", "json")) == "json"
    assert log_format(_options("--log-format", "console")) == "console"
    assert log_format(_options("--console-log")) == "console"


def test_every_line_is_a_json_object_the_libraries_warnings_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_from(_options("--log-format", "json"))
    structlog.get_logger("border_exchange.post").info("post.applied", records=2)
    logging.getLogger("aiokafka.consumer").warning("Heartbeat failed for group %s", "bx")
    logging.getLogger("aiokafka.consumer").info("chatter below warnings stays out")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]

    assert [(e["event"], e["level"]) for e in lines] == [
        ("post.applied", "info"),
        ("Heartbeat failed for group bx", "warning"),
    ]
    assert lines[0]["records"] == 2
    assert lines[1]["logger"] == "aiokafka.consumer"
    assert all("timestamp" in e for e in lines)


def test_the_console_format_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_from(_options("--log-format", "console"))
    structlog.get_logger("border_exchange.post").info("post.applied", records=2)
    err = capsys.readouterr().err
    assert "post.applied" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[0])


@pytest.mark.parametrize("command", LONG_RUNNING, ids=" ".join)
def test_every_long_running_command_takes_the_log_options(command: list[str]) -> None:
    args = build_parser().parse_args([*command, *_required(command), "--log-format", "json"])
    assert args.log_format == "json"
    assert args.log_level == "INFO"


def _required(command: list[str]) -> list[str]:
    if command == ["post", "run"]:
        return ["--participant", "COD", "--post", "aru", "--db", "x.db", "--trust", "t.yaml"]
    if command == ["post", "serve"]:
        return ["--db", "x.db"]
    if command == ["desk", "watch"]:
        return ["--as", "COD", "--trust", "t.yaml"]
    return ["--config", "c.yaml"]
