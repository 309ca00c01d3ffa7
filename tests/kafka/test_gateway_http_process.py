"""``gateway serve`` as its own process, called with curl as a national system would."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.naming import outbox_topic
from border_exchange.domain.samples import sample_alert_data
from tests.conftest import KafkaCluster
from tests.gateway_server import ServerProcess, add_token, write_config
from tests.kafka.test_gateway import outbox, participant

pytestmark = pytest.mark.kafka

CURL = shutil.which("curl") or "curl"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def curl(url: str, *args: str) -> Reply:
    """One curl call; its status, headers (lower-cased names) and JSON body."""
    done = subprocess.run(
        [CURL, "-sS", "-D", "-", "--max-time", "60", *args, url],
        capture_output=True,
        check=True,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    parsed = json.loads(body) if body.strip().startswith((b"{", b"[")) else body.decode()
    return Reply(int(lines[0].split()[1]), headers, parsed)


@pytest.fixture(scope="module")
def files(kafka: KafkaCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    origin = participant()
    asyncio.run(kafka.create_topic(name=outbox_topic(origin)))
    return write_config(tmp_path_factory.mktemp("gateway"), kafka.admin, origin)


def test_curl_creates_updates_cancels_and_retries_across_a_restart(
    files: Path, kafka: KafkaCluster
) -> None:
    import asyncio

    import yaml

    origin = yaml.safe_load(files.read_text())["participant"]
    token = add_token(files, "cod-case-management")
    alert = files.with_name("alert.json")
    data = sample_alert_data(AlertType.WANTED_PERSON, origin=origin, language="fr")
    alert.write_text(json.dumps(data))
    auth = ["-H", f"Authorization: Bearer {token}"]
    post = [*auth, "-H", "Content-Type: application/json", "--data-binary"]

    server = ServerProcess.start(files, token)
    try:
        url = server.url
        created = curl(f"{url}/alerts", *post, f"@{alert}", "-H", "Idempotency-Key: dossier-17")
        assert created.status == 202, created.body
        alert_id = created.body["alert_id"]
        retried = curl(f"{url}/alerts", *post, f"@{alert}", "-H", "Idempotency-Key: dossier-17")
        assert (retried.status, retried.body) == (202, created.body)
        guess = ["-H", "Authorization: Bearer bxg_guess", "-H", "Content-Type: application/json"]
        wrong = curl(f"{url}/alerts", *guess, "--data-binary", f"@{alert}")
        assert wrong.status == 401
        assert wrong.headers["content-type"] == "application/problem+json"
    finally:
        assert server.stop() == 0

    server = ServerProcess.start(files, token)
    try:
        url = server.url
        after = curl(f"{url}/alerts", *post, f"@{alert}", "-H", "Idempotency-Key: dossier-17")
        assert (after.status, after.body) == (202, created.body)
        alert.write_text(json.dumps(data | {"alert_id": alert_id}))
        updated = curl(f"{url}/alerts", *post, f"@{alert}")
        assert (updated.status, updated.body["version"]) == (202, 2)
        cancelled = curl(f"{url}/alerts/{alert_id}/cancel", *post, '{"reason": "arrêté"}')
        assert (cancelled.status, cancelled.body["version"]) == (202, 3)
        status = curl(f"{url}/alerts/{alert_id}", *auth)
        assert [v["operation"] for v in status.body["versions"]] == ["CREATE", "UPDATE", "CANCEL"]
    finally:
        assert server.stop() == 0
    assert len(asyncio.run(outbox(kafka, origin))) == 3


def test_curl_bad_input_gets_problems_and_the_server_keeps_serving(
    files: Path, kafka: KafkaCluster
) -> None:
    import asyncio

    import yaml

    origin = yaml.safe_load(files.read_text())["participant"]
    token = add_token(files, "ssd-border-control")
    before = len(asyncio.run(outbox(kafka, origin)))
    big = files.with_name("hundred-megabytes.json")
    with big.open("wb") as out:
        out.truncate(100 * 1024 * 1024)
    auth = ["-H", f"Authorization: Bearer {token}"]
    json_type = ["-H", "Content-Type: application/json"]
    server = ServerProcess.start(files, token)
    try:
        url = f"{server.url}/alerts"
        too_big = curl(url, *auth, *json_type, "--data-binary", f"@{big}")
        assert too_big.status == 413
        assert "Content-Length" in too_big.body["detail"]
        broken = curl(url, *auth, *json_type, "--data-binary", '{"alert_type": "WANTED')
        assert (broken.status, broken.body["type"]) == (
            400,
            "urn:border-exchange:problem:malformed-json",
        )
        unknown = curl(
            url, *auth, *json_type, "--data-binary", '{"alert_type": "WANTED_PERSON", "x": 1}'
        )
        assert unknown.status == 422
        assert "x" in [e["field"] for e in unknown.body["errors"]]
        form = curl(url, *auth, "--data-binary", "a=1")
        assert form.status == 415
        assert "application/x-www-form-urlencoded" in form.body["detail"]
        injected = curl(url, *auth, *json_type, "-H", "Idempotency-Key: a b%0d%0aX-Evil: 1",
                        "--data-binary", "{}")  # fmt: skip
        assert injected.status == 400
        assert "Idempotency-Key" in injected.body["detail"]
        assert "x-evil" not in injected.headers
        health = curl(f"{server.url}/health", *auth)
        assert health.status == 200
    finally:
        assert server.stop() == 0
    assert len(asyncio.run(outbox(kafka, origin))) == before
