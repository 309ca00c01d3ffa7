"""The broker a run uses follows BX_TEST_KAFKA, whatever the machine happens to run."""

from __future__ import annotations

import pytest

from tests.brokers import BrokerChoiceError, BrokerPath, chosen_path, describe

EXTERNAL = {"BX_KAFKA_BOOTSTRAP": "10.0.0.1:9094", "BX_KAFKA_ADMIN_PASSWORD": "pw"}


def test_the_launcher_is_the_default() -> None:
    assert chosen_path({}) is BrokerPath.LAUNCHER
    assert "the default" in describe(BrokerPath.LAUNCHER, {})


def test_each_path_is_chosen_by_name_in_any_case() -> None:
    assert chosen_path({"BX_TEST_KAFKA": "Launcher", **EXTERNAL}) is BrokerPath.LAUNCHER
    assert chosen_path({"BX_TEST_KAFKA": "external", **EXTERNAL}) is BrokerPath.EXTERNAL
    assert chosen_path({"BX_TEST_KAFKA": "testcontainers"}) is BrokerPath.TESTCONTAINERS


def test_an_address_alone_chooses_the_external_cluster_as_the_readme_says() -> None:
    assert chosen_path(EXTERNAL) is BrokerPath.EXTERNAL
    assert "at 10.0.0.1:9094" in describe(BrokerPath.EXTERNAL, EXTERNAL)


def test_an_unknown_path_or_a_missing_setting_is_named() -> None:
    with pytest.raises(BrokerChoiceError, match=r"'docker'.*launcher, external, testcontainers"):
        chosen_path({"BX_TEST_KAFKA": "docker"})
    with pytest.raises(BrokerChoiceError, match="BX_KAFKA_BOOTSTRAP and BX_KAFKA_ADMIN_PASSWORD"):
        chosen_path({"BX_TEST_KAFKA": "external"})


def test_a_docker_engine_does_not_change_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.brokers

    monkeypatch.setattr(tests.brokers, "docker_answers", lambda: True)
    assert chosen_path({}) is BrokerPath.LAUNCHER


def test_ci_does_not_install_a_docker_engine() -> None:
    from pathlib import Path

    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text(encoding="utf-8")
    installs = [line for line in ci.splitlines() if "apt-get install" in line]
    compose = [line for line in installs if "compose" in line]
    assert compose, "docker-compose is installed for the compose file's schema check"
    assert all("--no-install-recommends" in line for line in compose)
    assert not any("docker.io" in line for line in installs)
