"""The installed ``border-exchange`` command, run as a user runs it: a process, its exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from border_exchange.adapters.kafka_settings import KafkaSettings

COMMAND = Path(sys.executable).with_name("border-exchange")
"""The entry point ``pip install`` put beside this interpreter (``.venv/bin/border-exchange``)."""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``BX_`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BX_")}
    return env | dict(extra or {})


def run(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 180.0,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``border-exchange ARGS`` to its end; the result carries exit code, stdout, stderr."""
    return subprocess.run(
        [str(COMMAND), *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def start(*args: str, log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``border-exchange ARGS`` in the background, its output going to ``log``."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [str(COMMAND), *args], env=clean_env(env), stdout=sink, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    """SIGTERM ``process`` and wait for it (SIGKILL after ``timeout``); its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def kafka_config(settings: KafkaSettings, path: Path, **extra: object) -> Path:
    """Write ``{kafka: {...}}`` (and ``extra`` keys) for ``settings`` to ``path``."""
    kafka: dict[str, object] = {
        "bootstrap": settings.bootstrap,
        "security_protocol": settings.security_protocol,
    }
    for key in ("username", "password", "ca_file", "cert_file", "key_file"):
        value = getattr(settings, key, None)
        if value is not None:
            kafka[key] = str(value)
    path.write_text(yaml.safe_dump({"kafka": kafka, **extra}))
    return path


def summary(stdout: str) -> str:
    """The verdict line of ``audit replay`` (``Audit replay FROM .. TO: CLEAN``) in ``stdout``."""
    lines = [line for line in stdout.splitlines() if line.startswith("Audit replay ")]
    assert len(lines) == 1, stdout
    return lines[0]
