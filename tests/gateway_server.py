"""A ``border-exchange gateway serve`` process for tests: its files, its token, its lifetime."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from border_exchange.adapters.kafka_launcher import free_port
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.keyfiles import write_private_key
from border_exchange.domain.trust import PublicKey, key_entry
from tests.kafka.test_gateway import KEY

PASSPHRASE = "correct horse battery"


def command() -> list[str]:
    """The CLI entry point of this environment."""
    return [str(Path(sys.executable).with_name("border-exchange"))]


def write_identity(directory: Path, origin: str) -> None:
    """``trust.yaml``, listing ``origin`` with the test key, and that key in ``key.pem``
    (encrypted with ``PASSPHRASE``), in ``directory``."""
    now = datetime.now(UTC)
    public = PublicKey(
        origin, f"{origin}-1", bytes(KEY.verify_key), now - timedelta(days=1), now + timedelta(9)
    )
    trust = {
        "version": 1,
        "participants": [
            {
                "id": origin,
                "name": "Police",
                "kind": "NATIONAL_SERVICE",
                "keys": [key_entry(public)],
            }
        ],
    }
    (directory / "trust.yaml").write_text(yaml.safe_dump(trust))
    write_private_key(directory / "key.pem", KEY, PASSPHRASE.encode())


def write_config(directory: Path, settings: KafkaSettings, origin: str, **extra: Any) -> Path:
    """Trust store, key and ``gateway.yaml`` for ``origin`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    write_identity(directory, origin)
    config = {
        "kafka": {
            "bootstrap": settings.bootstrap,
            "security_protocol": settings.security_protocol,
            "username": settings.username,
            "password": settings.password,
        },
        "participant": origin,
        "trust_store": "trust.yaml",
        "signing_key": "key.pem",
        "state_db": "gateway.db",
        "port": free_port(),
        "publish_timeout": 4,
    } | extra
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def add_token(config: Path, client: str) -> str:
    """A new token for ``client``, made with ``gateway token add``."""
    done = subprocess.run(
        [*command(), "gateway", "token", "add", "--config", str(config), client],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@dataclass
class ServerProcess:
    """A running ``gateway serve``."""

    config: Path
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, config: Path, token: str, scheme: str = "http", **client: Any) -> ServerProcess:
        port = yaml.safe_load(config.read_text())["port"]
        log = config.with_name(f"serve-{time.monotonic_ns()}.log")
        env = os.environ | {"BX_KEY_PASSPHRASE": PASSPHRASE}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command(), "gateway", "serve", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        server = cls(config, process, f"{scheme}://127.0.0.1:{port}", log)
        server.wait_ready(token, **client)
        return server

    def wait_ready(self, token: str, timeout: float = 60.0, **client: Any) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway serve exited: {self.log.read_text()[-2000:]}")
            try:
                answer = httpx.get(
                    f"{self.url}/health", headers={"Authorization": f"Bearer {token}"}, **client
                )
            except httpx.TransportError:
                time.sleep(0.3)
                continue
            if answer.status_code == 200:
                return
            time.sleep(0.3)
        raise RuntimeError(f"gateway serve not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> int:
        """SIGTERM, then wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
