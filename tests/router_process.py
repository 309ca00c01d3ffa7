"""``router run`` as a process of its own on a test's exchange: its config, start and stop.

The fault tests kill it with SIGKILL at random points and start it again on the same
config and log; at the end it is asked to stop with SIGTERM, and killed if it does not
within a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from border_exchange.adapters.kafka_launcher import die_with_parent
from tests.exchange import Exchange

PASSPHRASE = "crash-test"
"""The passphrase of the hub's signing key the process reads."""


def router_config(ex: Exchange, directory: Path) -> Path:
    """A router configuration for ``ex`` in ``directory``, with the files it names."""
    paths = ex.sandbox.write(directory, PASSPHRASE.encode())
    config = {
        "kafka": {
            "bootstrap": ex.settings.bootstrap,
            "security_protocol": ex.settings.security_protocol,
            "username": ex.settings.username,
            "password": ex.settings.password,
        },
        "trust_store": str(paths["trust"]),
        "agreements": str(paths["agreements"]),
        "agreement_history": str(directory / "history"),
        "signing_key": str(paths["key:hub"]),
        "group_id": ex.group,
        "outbox_pattern": ex.tuning().outbox_pattern,
        "batch_size": 300,
        "checkpoint_every": 500,
        "metrics_port": 0,
    }
    path = directory / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_router(config: Path, log: Path, level: str = "WARNING") -> subprocess.Popen[bytes]:
    """The router started on ``config``, appending its output to ``log``."""
    env = {**os.environ, "BX_KEY_PASSPHRASE": PASSPHRASE}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "border_exchange", "router", "run", "--config", str(config),
             "--log-level", level],
            env=env, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        )  # fmt: skip


def kill_9(router: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``router`` and wait until it is gone."""
    router.send_signal(signal.SIGKILL)
    router.wait()


def stop_router(router: subprocess.Popen[bytes]) -> None:
    """Ask a running ``router`` to stop (SIGTERM); kill it after a minute."""
    if router.poll() is None:
        router.send_signal(signal.SIGTERM)
        try:
            router.wait(60)
        except subprocess.TimeoutExpired:
            router.kill()
