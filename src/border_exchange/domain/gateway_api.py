"""The HTTP contract of a gateway: its limits, its problem documents and its rate limit.

Pure values and functions; the FastAPI application in ``services/gateway_http.py``
applies them. Problem documents follow RFC 9457 (``application/problem+json``); every
field problem names the field path and the constraint it breaks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.limits import MAX_JSON_ALERT_BYTES

PROBLEM_JSON: Final = "application/problem+json"

MAX_REQUEST_BYTES: Final = MAX_JSON_ALERT_BYTES
"""Largest request body: the size contract's largest alert as JSON.

A larger body is refused with 413 from its ``Content-Length`` before any of it is read,
or as soon as a chunked body passes this many bytes."""

IDEMPOTENCY_KEY_TTL: Final = timedelta(hours=24)
"""How long an ``Idempotency-Key`` and its answer are remembered after the first request."""

IDEMPOTENCY_KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What an ``Idempotency-Key`` may be (a UUID fits): visible ASCII, no separators."""

RETRY_AFTER_SECONDS: Final = 5
"""``Retry-After`` of a 503 answer: when the broker was unreachable."""

DEFAULT_PUBLISH_TIMEOUT: Final = 10.0
"""Seconds a request keeps retrying its transaction before the answer is 503."""

GROUP_MAX_ALERTS: Final = 100
"""Requests one shared outbox transaction carries at most (group commit)."""

GROUP_MAX_BYTES: Final = 8 * MAX_JSON_ALERT_BYTES
"""Request bytes one shared outbox transaction carries at most; a request larger than
this alone still goes, in a transaction of its own."""

DEFAULT_RATE_PER_SECOND: Final = 50.0
"""Requests a client may make per second, on average (a token bucket)."""

DEFAULT_BURST: Final = 100
"""Requests a client may make at once after being idle."""

_TAGS: Final = frozenset(t.value for t in AlertType)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One field that breaks the contract: its dotted path and the constraint."""

    field: str
    constraint: str

    def as_json(self) -> dict[str, str]:
        """The JSON member of a problem document's ``errors`` list."""
        return {"field": self.field, "constraint": self.constraint}


@dataclass(frozen=True, slots=True)
class Problem:
    """An RFC 9457 problem document; ``slug`` names its type."""

    status: int
    slug: str
    title: str
    detail: str
    errors: tuple[FieldProblem, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        """The problem type URI."""
        return f"urn:border-exchange:problem:{self.slug}"

    def document(self, instance: str) -> dict[str, Any]:
        """The JSON document for a request to ``instance`` (its path)."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors:
            body["errors"] = [e.as_json() for e in self.errors]
        return body


class ProblemError(Exception):
    """Raised inside the HTTP application to answer with ``problem``."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def field_problems_of_pydantic(errors: Iterable[Mapping[str, Any]]) -> tuple[FieldProblem, ...]:
    """Pydantic's errors of a request body as field paths and constraints.

    The ``body`` prefix and the alert-type tag of the union are dropped, so the path is
    the one the alert document uses (``sections.vehicle.vin``).
    """
    problems = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:]
        if loc and loc[0] in _TAGS:
            loc = loc[1:]
        if error.get("type") in {"union_tag_not_found", "union_tag_invalid"}:
            loc = ["alert_type"]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(FieldProblem(".".join(loc) or "(body)", message))
    return tuple(problems)


def field_problems_of_strings(problems: Sequence[str]) -> tuple[FieldProblem, ...]:
    """The package's ``"path: rule"`` problem strings as field problems."""
    parsed = []
    for problem in problems:
        path, sep, rule = problem.partition(": ")
        parsed.append(FieldProblem(path, rule) if sep else FieldProblem("(alert)", problem))
    return tuple(parsed)


def invalid_body(problems: tuple[FieldProblem, ...]) -> Problem:
    """422: the body is JSON but not a valid alert (or cancel)."""
    listed = "; ".join(f"{p.field}: {p.constraint}" for p in problems)
    return Problem(422, "invalid-alert", "The alert breaks the contract", listed, problems)


def malformed_json(message: str) -> Problem:
    """400: the body is not JSON at all."""
    return Problem(
        400,
        "malformed-json",
        "The body is not valid JSON",
        f"the body is not valid JSON: {message}",
        (FieldProblem("(body)", message),),
    )


def body_fingerprint(body: bytes) -> str:
    """SHA-256 of the body's JSON value in canonical form (key order and spacing ignored)."""
    try:
        value = json.loads(body)
    except ValueError:
        canonical = body
    else:
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def check_idempotency_key(value: str) -> str:
    """``value`` if it is a valid ``Idempotency-Key``; a 400 problem otherwise."""
    if IDEMPOTENCY_KEY_PATTERN.fullmatch(value):
        return value
    raise ProblemError(
        Problem(
            400,
            "invalid-header",
            "A request header is malformed",
            "Idempotency-Key: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
            (FieldProblem("header:Idempotency-Key", "must match [A-Za-z0-9._:-]{1,128}"),),
        )
    )


@dataclass(slots=True)
class TokenBucket:
    """A rate limit of ``rate`` per second with bursts of ``burst``, at explicit times."""

    rate: float
    burst: int
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> float:
        """0 when a request may go now (and count it); else seconds until one may."""
        if self.tokens < 0:
            self.tokens, self.updated = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
