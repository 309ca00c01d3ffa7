"""``border-exchange router run`` refuses a bad configuration before it connects: exit 1 and
one line naming what is wrong, never a traceback (through the installed command)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from border_exchange.demo.sandbox import make_sandbox, open_agreements
from tests import cli

# The command runs on the machine's clock, not the run's shifted one.
pytestmark = pytest.mark.real_clock

PASSPHRASE = "router-config-test"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    box = make_sandbox(["CAF", "COD"], open_agreements([("CAF", "COD")]))
    return dict(box.write(tmp_path_factory.mktemp("router"), PASSPHRASE.encode()))


def _config(files: dict[str, Path], **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        # A closed port: none of these runs may get as far as connecting.
        "kafka": {"bootstrap": "127.0.0.1:9", "security_protocol": "PLAINTEXT"},
        "trust_store": str(files["trust"]),
        "agreements": str(files["agreements"]),
        "signing_key": str(files["key:hub"]),
        "metrics_port": 0,
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return config


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "no trust store": ({"trust_store": None}, "trust_store: Field required"),
    "an unknown key": ({"batch_sise": 10}, "batch_sise: Extra inputs are not permitted"),
    "a value out of range": ({"batch_size": 0}, "batch_size: Input should be greater than"),
    "a missing trust store file": ({"trust_store": "nowhere.yaml"}, "nowhere.yaml"),
    "a participant's key as the hub's": ({"signing_key": "CAF"}, "not the private half of hub"),
    "no kafka section": ({"kafka": None}, "kafka"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_bad_configuration_exits_1_naming_the_problem(
    files: dict[str, Path], tmp_path: Path, case: str
) -> None:
    changes, expected = CASES[case]
    if changes.get("signing_key") == "CAF":
        changes = {"signing_key": str(files["key:CAF"])}
    config = tmp_path / "router.yaml"
    config.write_text(yaml.safe_dump(_config(files, **changes)))
    result = cli.run(
        "router", "run", "--config", str(config), env={"BX_KEY_PASSPHRASE": PASSPHRASE}
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]  # after any log lines: the one error line
    assert last.startswith("border-exchange: error:"), result.stderr
    assert expected in last


def test_a_wrong_passphrase_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "router.yaml"
    config.write_text(yaml.safe_dump(_config(files)))
    result = cli.run("router", "run", "--config", str(config), env={"BX_KEY_PASSPHRASE": "wrong"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "passphrase" in result.stderr


def test_a_missing_config_file_and_a_missing_option(tmp_path: Path) -> None:
    missing = cli.run("router", "run", "--config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1
    assert "absent.yaml" in missing.stderr
    usage = cli.run("router", "run")
    assert usage.returncode == 2  # argparse: --config is required
    assert "--config" in usage.stderr
