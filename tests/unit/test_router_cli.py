"""``border-exchange router run --help``: what an operator reads before writing a config."""

from __future__ import annotations

import pytest

from border_exchange.bootstrap import RouterConfig
from border_exchange.cli.main import main


def test_the_help_lists_every_config_key_with_its_default_or_that_it_is_required(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["router", "run", "--help"])
    assert stopped.value.code == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name, info in RouterConfig.model_fields.items():
        assert name in lines, f"{name} is not in the help"
        if info.is_required():
            assert "required" in lines[name]
        elif info.default is not None:
            assert f"default {info.default};" in lines[name]
        assert str(info.description) in lines[name]
    assert "default 10.0;" in lines["offset_commit_interval"]
