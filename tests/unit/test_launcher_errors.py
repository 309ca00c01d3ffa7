"""The launcher says what is wrong and how to fix it, never with a stack trace."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from border_exchange.adapters import kafka_launcher
from border_exchange.cli.main import main
from border_exchange.errors import LauncherError


def test_a_taken_port_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LauncherError, match=rf"port {port} .*already in use.*omit --port"):
            kafka_launcher.ensure_port_free(port)


def test_missing_java_asks_for_java_17(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(LauncherError, match=r"'java' was not found.*Java 17"):
        kafka_launcher.java_executable()


def test_missing_maven_is_named_when_jars_are_not_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BX_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", "")
    with pytest.raises(LauncherError, match=r"'mvn' was not found.*Maven"):
        kafka_launcher.resolve_jars()


def test_jars_that_cannot_be_fetched_report_what_maven_said(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path / "checkout"
    (root / "deploy" / "kafka").mkdir(parents=True)
    pom = (kafka_launcher.project_root() / "deploy" / "kafka" / "pom.xml").read_text()
    # An artifact that does not exist stands for any fetch failure (offline, proxy, typo).
    (root / "deploy" / "kafka" / "pom.xml").write_text(
        pom.replace(
            "<artifactId>kafka-tools</artifactId>", "<artifactId>no-such-kafka</artifactId>"
        )
    )
    monkeypatch.setenv("BX_PROJECT_ROOT", str(root))
    monkeypatch.setenv("BX_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(LauncherError, match=r"could not fetch the Kafka jars.*Maven said"):
        kafka_launcher.resolve_jars()
    assert not (kafka_launcher.cache_dir() / "lib").exists()


def test_the_cli_prints_one_line_instead_of_a_trace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code = main(["dev", "kafka", "start", "--dir", str(tmp_path), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("border-exchange: error: port ")
    assert "Traceback" not in err


def test_status_of_a_cluster_never_started_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dev", "kafka", "status", "--dir", str(tmp_path)]) == 1
    assert "not running" in capsys.readouterr().out
