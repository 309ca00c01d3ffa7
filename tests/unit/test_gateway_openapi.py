"""The committed OpenAPI document is the one the code serves, and the contract's pure parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from border_exchange.domain.gateway_api import (
    MAX_REQUEST_BYTES,
    ProblemError,
    TokenBucket,
    body_fingerprint,
    check_idempotency_key,
    field_problems_of_pydantic,
)
from border_exchange.domain.limits import MAX_ALERT_BYTES, MAX_JSON_ALERT_BYTES, MAX_PHOTO_BYTES
from border_exchange.services.gateway_http import render_openapi

COMMITTED = Path(__file__).parents[2] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_the_one_the_code_serves() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render_openapi(), (
        "docs/openapi.json is stale: run `make openapi`"
    )


def test_the_document_names_every_route_and_the_bearer_scheme() -> None:
    document = json.loads(render_openapi())
    assert set(document["paths"]) == {
        "/alerts",
        "/alerts/{alert_id}/cancel",
        "/alerts/{alert_id}",
        "/health",
        "/metrics",
    }
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    post = document["paths"]["/alerts"]["post"]
    assert set(post["responses"]) >= {"202", "400", "401", "413", "415", "422", "429", "503"}


def test_the_body_limit_follows_the_size_contract() -> None:
    assert MAX_REQUEST_BYTES == MAX_JSON_ALERT_BYTES
    assert MAX_REQUEST_BYTES > MAX_PHOTO_BYTES * 4 / 3 + (MAX_ALERT_BYTES - MAX_PHOTO_BYTES)


def test_field_problems_drop_the_body_prefix_and_the_alert_type_tag() -> None:
    errors = [
        {"loc": ("body", "VEHICLE_NOTICE", "sections", "vehicle", "vin"), "msg": "bad pattern"},
        {"loc": ("body",), "type": "union_tag_invalid", "msg": "unknown tag"},
        {"loc": ("body", "WANTED_PERSON"), "msg": "Value error, a CREATE has version 1"},
    ]
    assert [(p.field, p.constraint) for p in field_problems_of_pydantic(errors)] == [
        ("sections.vehicle.vin", "bad pattern"),
        ("alert_type", "unknown tag"),
        ("(body)", "a CREATE has version 1"),
    ]


def test_the_same_json_value_has_the_same_fingerprint() -> None:
    assert body_fingerprint(b'{"a": 1, "b": [2]}') == body_fingerprint(b'{"b":[2],"a":1}')
    assert body_fingerprint(b'{"a": 1}') != body_fingerprint(b'{"a": 2}')


@pytest.mark.parametrize("key", ["", "a b", "k\r\nSet-Cookie: x", "é", "x" * 129])
def test_a_malformed_idempotency_key_is_a_400_problem(key: str) -> None:
    with pytest.raises(ProblemError) as raised:
        check_idempotency_key(key)
    assert raised.value.problem.status == 400
    assert check_idempotency_key("3f0c2a8e-7d1b-4c5e-9a60-1b2c3d4e5f60")


def test_a_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) == pytest.approx(0.5)
    assert bucket.take(100.5) == 0.0
