"""The HTTP gateway in process (httpx over ASGI) on a real broker: the lifecycle, idempotency
across a restart, authentication, limits and bad input."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from border_exchange.adapters.gateway_store import GatewayStore
from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.catalog import AlertType, Operation
from border_exchange.domain.gateway_api import MAX_REQUEST_BYTES, PROBLEM_JSON
from border_exchange.domain.naming import outbox_topic
from border_exchange.domain.samples import sample_alert_data
from border_exchange.services.gateway import Gateway
from border_exchange.services.gateway_http import GatewayApi, create_app
from tests.conftest import KafkaCluster
from tests.kafka.test_gateway import KEY, outbox, participant, trust_for

pytestmark = pytest.mark.kafka


@dataclass
class Served:
    """An HTTP gateway in process and what a test needs to talk to it."""

    kafka: KafkaCluster
    origin: str
    store: GatewayStore
    token: str
    client: httpx.AsyncClient
    gateway: Gateway

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.auth | headers)

    async def published(self) -> int:
        return len(await outbox(self.kafka, self.origin))


def api_client(api: GatewayApi) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(api))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")


async def open_gateway(kafka: KafkaCluster, origin: str) -> Gateway:
    gateway = Gateway(kafka.admin, origin, KEY, f"{origin}-1", trust_for(origin), retry_for=5.0)
    return await gateway.__aenter__()


@pytest.fixture
async def served(kafka: KafkaCluster, tmp_path: Path) -> AsyncIterator[Served]:
    origin = participant()
    await kafka.create_topic(name=outbox_topic(origin))
    store = GatewayStore(tmp_path / "gateway.db")
    token = store.add_client("caf-case-management")
    gateway = await open_gateway(kafka, origin)
    async with api_client(GatewayApi(gateway, store)) as client:
        yield Served(kafka, origin, store, token, client, gateway)
    await gateway.close()
    store.close()


def assert_problem(response: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    document: dict[str, Any] = response.json()
    assert document["status"] == status
    assert document["type"].startswith("urn:border-exchange:problem:")
    for fragment in fragments:
        assert fragment in response.text
    return document


async def test_create_update_cancel_and_the_versions_of_an_alert(served: Served) -> None:
    alert = sample_alert_data(AlertType.VEHICLE_NOTICE, origin=served.origin)
    created = await served.post("/alerts", alert)
    assert created.status_code == 202, created.text
    body = created.json()
    assert (body["status"], body["version"], body["operation"]) == ("accepted", 1, "CREATE")
    alert_id = body["alert_id"]
    assert created.headers["location"] == f"/alerts/{alert_id}"

    updated = await served.post("/alerts", alert | {"alert_id": alert_id})
    assert (updated.status_code, updated.json()["version"]) == (202, 2)
    cancelled = await served.post(f"/alerts/{alert_id}/cancel", {"reason": "vehicle recovered"})
    assert (cancelled.json()["version"], cancelled.json()["operation"]) == (3, "CANCEL")

    status = (await served.client.get(f"/alerts/{alert_id}", headers=served.auth)).json()
    assert status["cancelled"] is True
    assert [v["version"] for v in status["versions"]] == [1, 2, 3]
    assert [v["message_id"] for v in status["versions"]] == [
        r.json()["message_id"] for r in (created, updated, cancelled)
    ]
    messages = await outbox(served.kafka, served.origin)
    assert [(m.header.version, m.header.operation) for m in messages] == [
        (1, Operation.CREATE),
        (2, Operation.UPDATE),
        (3, Operation.CANCEL),
    ]
    again = await served.post(f"/alerts/{alert_id}/cancel", {"reason": "twice"})
    assert_problem(again, 422, "was cancelled at version 3")
    unknown = await served.client.get("/alerts/never-published", headers=served.auth)
    assert_problem(unknown, 404, "never-published")


async def test_a_retried_post_publishes_once_also_after_a_restart(
    served: Served, kafka: KafkaCluster
) -> None:
    alert = sample_alert_data(AlertType.WANTED_PERSON, origin=served.origin)
    first = await served.post("/alerts", alert, **{"Idempotency-Key": "case-4711-v1"})
    retry = await served.post("/alerts", alert, **{"Idempotency-Key": "case-4711-v1"})
    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    other = copy.deepcopy(alert)
    other["sections"]["offence"]["description"] = "Another offence altogether."
    reused = await served.post("/alerts", other, **{"Idempotency-Key": "case-4711-v1"})
    assert_problem(reused, 422, "Idempotency-Key", "different body")
    assert await served.published() == 1

    # a new server process: a new gateway and API over the same store file
    gateway = await open_gateway(kafka, served.origin)
    try:
        async with api_client(GatewayApi(gateway, served.store)) as restarted:
            after = await restarted.post(
                "/alerts", json=alert, headers=served.auth | {"Idempotency-Key": "case-4711-v1"}
            )
    finally:
        await gateway.close()
    assert after.status_code == 202
    assert after.json() == first.json()
    assert await served.published() == 1


async def test_a_request_pending_when_the_server_stopped_is_settled_from_the_outbox(
    served: Served, kafka: KafkaCluster
) -> None:
    """The server stopped after the commit but before it recorded the answer (or before
    the publish): at the next start the outbox says which, and a retry publishes once."""
    alert = sample_alert_data(AlertType.BORDER_INCIDENT, origin=served.origin)
    committed = await served.gateway.publish(parse_alert(alert | {"alert_id": "INC-committed"}))
    client = served.store.clients()[0].name
    ttl = timedelta(hours=1)
    fingerprint = "f" * 64
    served.store.begin(client, "crashed-after-commit", fingerprint, "INC-committed", 0, ttl)
    served.store.begin(client, "crashed-before-publish", fingerprint, "INC-never", 0, ttl)

    gateway = await open_gateway(kafka, served.origin)
    try:
        GatewayApi(gateway, served.store)
    finally:
        await gateway.close()
    settled = served.store.record(client, "crashed-after-commit")
    assert settled is not None
    assert settled.state == "done"
    assert settled.response is not None
    assert settled.response["message_id"] == committed.message_id
    assert served.store.record(client, "crashed-before-publish") is None
    assert await served.published() == 1


async def test_no_token_a_wrong_token_and_a_revoked_token_are_refused(served: Served) -> None:
    alert = sample_alert_data(AlertType.VEHICLE_NOTICE, origin=served.origin)
    none = await served.client.post("/alerts", json=alert)
    assert_problem(none, 401, "Bearer")
    assert none.headers["www-authenticate"].startswith("Bearer")
    wrong = await served.client.post(
        "/alerts", json=alert, headers={"Authorization": "Bearer bxg_not-a-token"}
    )
    assert_problem(wrong, 401, "unknown or revoked")
    for path in ("/health", "/metrics", "/openapi.json", "/alerts/x"):
        assert (await served.client.get(path)).status_code == 401
    served.store.revoke_client("caf-case-management")
    revoked = await served.post("/alerts", alert)
    assert_problem(revoked, 401, "unknown or revoked")
    assert await served.published() == 0


async def test_bad_input_gets_a_problem_naming_the_fault_and_publishes_nothing(
    served: Served,
) -> None:
    alert = sample_alert_data(AlertType.WANTED_PERSON, origin=served.origin)
    auth = served.auth
    post = served.client.post

    broken = await post("/alerts", content=b'{"alert_type": ', headers=auth | json_type())
    assert_problem(broken, 400, "not valid JSON")
    unknown = await served.post("/alerts", alert | {"colour_of_hat": "red"})
    document = assert_problem(unknown, 422, "colour_of_hat")
    assert {"field": "colour_of_hat", "constraint": "Extra inputs are not permitted"} in document[
        "errors"
    ]
    alert["sections"]["identity"]["date_of_birth"] = "17/04/1986"
    bad_date = assert_problem(await served.post("/alerts", alert), 422)
    assert bad_date["errors"][0]["field"] == "sections.identity.date_of_birth"
    assert "valid date" in bad_date["errors"][0]["constraint"]
    alert = sample_alert_data(AlertType.WANTED_PERSON, origin=served.origin)
    other = assert_problem(await served.post("/alerts", alert | {"origin": "TCD"}), 422)
    assert other["errors"] == [
        {
            "field": "origin",
            "constraint": f"must be {served.origin}, the participant of this gateway",
        }
    ]
    as_text = await post(
        "/alerts", content=json.dumps(alert), headers=auth | {"Content-Type": "text/plain"}
    )
    assert_problem(as_text, 415, "Content-Type: text/plain")
    injected = await served.post(
        "/alerts", alert, **{"Idempotency-Key": "k%0d%0aSet-Cookie: session=1"}
    )
    assert_problem(injected, 400, "Idempotency-Key")
    assert "set-cookie" not in injected.headers

    declared = await post(
        "/alerts",
        content=b"{}",
        headers=auth | json_type() | {"Content-Length": str(100 * 1024 * 1024)},
    )
    assert_problem(declared, 413, "Content-Length")

    sent = 0

    async def hundred_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b" " * (1024 * 1024)
        for _ in range(100):
            sent += len(chunk)
            yield chunk

    streamed = await post("/alerts", content=hundred_megabytes(), headers=auth | json_type())
    assert_problem(streamed, 413, str(MAX_REQUEST_BYTES))
    assert sent <= MAX_REQUEST_BYTES + 2 * 1024 * 1024  # refused long before 100 MB were read

    assert await served.published() == 0
    fine = await served.post("/alerts", alert)
    assert fine.status_code == 202  # and the server goes on serving
    assert await served.published() == 1


def json_type() -> dict[str, str]:
    return {"Content-Type": "application/json"}


async def test_the_rate_limit_answers_429_with_retry_after(served: Served) -> None:
    limited = GatewayApi(served.gateway, served.store, rate_per_second=0.01, burst=2)
    async with api_client(limited) as client:
        answers = [(await client.get("/health", headers=served.auth)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert_problem(answers[2], 429, "caf-case-management")
    assert int(answers[2].headers["retry-after"]) >= 1


async def test_health_and_metrics_count_what_was_accepted(served: Served) -> None:
    health = await served.client.get("/health", headers=served.auth)
    assert health.json() == {
        "status": "ok",
        "participant": served.origin,
        "topic": outbox_topic(served.origin),
    }
    alert = sample_alert_data(AlertType.VEHICLE_NOTICE, origin=served.origin)
    assert (await served.post("/alerts", alert)).status_code == 202
    assert (await served.post("/alerts", alert | {"bogus": 1})).status_code == 422
    text = (await served.client.get("/metrics", headers=served.auth)).text
    assert 'bx_gateway_http_accepted_total{operation="CREATE"} 1' in text
    assert 'bx_gateway_http_requests_total{status="422"} 1' in text
    assert "# TYPE bx_gateway_http_publish_latency_seconds histogram" in text
