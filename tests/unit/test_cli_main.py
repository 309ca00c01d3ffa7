"""The command line imports only the module of the command it runs."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys

import pytest

from border_exchange.cli.main import COMMANDS, build_parser, main


def _commands_added_by(module: str) -> set[str]:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    importlib.import_module(module).register(subparsers)
    return set(subparsers.choices)


def _choices(parser: argparse.ArgumentParser) -> set[str]:
    """The commands ``parser`` knows."""
    return {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }


def test_each_module_adds_exactly_the_commands_listed_for_it() -> None:
    for module, commands in COMMANDS.items():
        assert _commands_added_by(module) == set(commands), module


def test_a_command_gets_a_parser_of_its_own_and_anything_else_the_full_one() -> None:
    full = build_parser()
    everything = {c for commands in COMMANDS.values() for c in commands}
    assert _choices(full) == everything
    for command in ("router", "cancel"):
        parser = build_parser(command)
        module = next(m for m, commands in COMMANDS.items() if command in commands)
        assert _choices(parser) == set(COMMANDS[module])
    for other in (None, "--help", "no-such-command"):
        assert _choices(build_parser(other)) == everything


def test_router_run_imports_neither_the_gateway_nor_the_demo_nor_the_alert_models() -> None:
    probe = (
        "import sys\n"
        "from border_exchange.cli.main import main\n"
        "try:\n"
        "    main(['router', 'run', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    imported = set(done.stdout.split())
    assert "border_exchange.cli.router" in imported
    heavy_modules = (
        "border_exchange.services.gateway",
        "border_exchange.services.gateway_http",
        "border_exchange.demo.cli",
        "border_exchange.domain.alerts",
        "fastapi",
    )
    for heavy in heavy_modules:
        assert heavy not in imported, heavy


def _after_router_help(env: dict[str, str]) -> str:
    """``PYDANTIC_DISABLE_PLUGINS`` as ``router run --help`` leaves it, in a fresh process."""
    probe = (
        "import os\n"
        "from border_exchange.cli.main import main\n"
        "try:\n"
        "    main(['router', 'run', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(os.environ.get('PYDANTIC_DISABLE_PLUGINS'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60,
        env=env,
    )  # fmt: skip
    return done.stdout.split()[-1]


def test_the_command_line_skips_pydantics_plugin_search_unless_told_otherwise() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    assert _after_router_help(env) == "__all__"
    assert _after_router_help({**env, "PYDANTIC_DISABLE_PLUGINS": "none"}) == "none"


def test_version_is_read_when_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"border-exchange {version('border-exchange')}\n"
