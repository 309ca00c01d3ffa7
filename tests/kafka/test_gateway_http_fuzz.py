"""Requests generated from the committed OpenAPI document (schemathesis) against a running
``gateway serve``: a malformed request always gets a 4xx problem document, never a 500,
and nothing is published but what was answered 202."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from border_exchange.domain.naming import outbox_topic
from tests.conftest import KafkaCluster
from tests.gateway_server import ServerProcess, add_token, write_config
from tests.kafka.test_gateway import outbox, participant

pytestmark = pytest.mark.kafka

COMMITTED = Path(__file__).parents[2] / "docs" / "openapi.json"

SCHEMA = schemathesis.openapi.from_path(COMMITTED).include(method="POST")
SCHEMA.config.generation.update(modes=[GenerationMode.NEGATIVE, GenerationMode.POSITIVE])


@dataclass
class Running:
    url: str
    token: str
    origin: str
    accepted: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def running(kafka: KafkaCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    origin = participant()
    asyncio.run(kafka.create_topic(name=outbox_topic(origin)))
    config = write_config(
        tmp_path_factory.mktemp("fuzz"), kafka.admin, origin, rate_per_second=1000, burst=1000
    )
    token = add_token(config, "fuzzer")
    server = ServerProcess.start(config, token)
    state = Running(server.url, token, origin)
    try:
        yield state
    finally:
        assert server.stop() == 0
    # never a partial publish: the outbox holds exactly the messages answered 202
    published = asyncio.run(outbox(kafka, origin))
    assert sorted(m.header.message_id for m in published) == sorted(state.accepted)
    assert yaml.safe_load(config.read_text())["participant"] == origin


@SCHEMA.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_4xx_problems_never_a_500(
    case: schemathesis.Case,  # type: ignore[type-arg]  # generic in name only, untyped
    running: Running,
) -> None:
    response = case.call(base_url=running.url, headers={"Authorization": f"Bearer {running.token}"})
    assert response.status_code < 500, response.text
    mode = case.meta.generation.mode if case.meta is not None else None
    if response.status_code == 202:
        running.accepted.append(response.json()["message_id"])
        return
    assert 400 <= response.status_code < 500
    kind = response.headers.get("content-type")
    assert (kind[0] if isinstance(kind, list) else kind) == "application/problem+json"
    problem = response.json()
    assert problem["status"] == response.status_code
    assert problem["detail"]
    if mode is GenerationMode.NEGATIVE:
        assert response.status_code != 202
