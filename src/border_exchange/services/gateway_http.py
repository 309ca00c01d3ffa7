"""A national service's gateway over HTTP: a FastAPI application around ``Gateway``.

``GatewayApi`` holds a started ``Gateway`` and the local store; ``create_app`` builds the
ASGI application. A guard in front of the routes authenticates every request by its
bearer token, applies the client's rate limit, checks the content type and refuses a
body larger than ``MAX_REQUEST_BYTES`` before reading it; every refusal and every error
is an RFC 9457 problem document. ``202 Accepted`` is answered only once the outbox
transaction has committed; a broker that stays unreachable for ``publish_timeout``
seconds gives ``503`` with ``Retry-After``.

Its length is the HTTP contract itself: the request and answer models the committed
OpenAPI document is generated from, the guard, and the problem documents; publishing
is ``Gateway``'s (``services/gateway.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import structlog
from fastapi import Body, FastAPI, Header, Path, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from border_exchange import __version__
from border_exchange.adapters.gateway_store import Accepted, GatewayStore
from border_exchange.adapters.metrics import Metrics
from border_exchange.domain.alerts import AlertInput, LongText
from border_exchange.domain.gateway_api import (
    DEFAULT_BURST,
    DEFAULT_RATE_PER_SECOND,
    IDEMPOTENCY_KEY_TTL,
    MAX_REQUEST_BYTES,
    PROBLEM_JSON,
    RETRY_AFTER_SECONDS,
    FieldProblem,
    Problem,
    ProblemError,
    TokenBucket,
    body_fingerprint,
    check_idempotency_key,
    field_problems_of_pydantic,
    field_problems_of_strings,
    invalid_body,
    malformed_json,
)
from border_exchange.errors import CommitUnknownError, KafkaError, ValidationError
from border_exchange.services.gateway import Cancellation, Gateway, Receipt
from border_exchange.services.group_commit import GroupCommit

log = structlog.get_logger(__name__)

AlertIdPath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Path(description="the alert id"),
]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Retry with the same key and body: the first answer is returned again and "
            f"nothing is published twice. Remembered for {IDEMPOTENCY_KEY_TTL}."
        ),
    ),
]

BEARER: Final = HTTPBearer(
    auto_error=False,
    description="A token made with `border-exchange gateway token add`.",
)


class AcceptedMessage(BaseModel):
    """The answer to an accepted publish: the outbox transaction has committed."""

    model_config = ConfigDict(frozen=True)

    status: str = Field(description="always 'accepted'")
    message_id: str
    alert_id: str
    version: int
    operation: str = Field(description="CREATE, UPDATE or CANCEL")
    partition: int
    offset: int


class CancelRequest(BaseModel):
    """Why an alert is withdrawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: LongText


class VersionStatus(BaseModel):
    """One published version and what the gateway knows of its delivery."""

    model_config = ConfigDict(frozen=True)

    version: int
    message_id: str
    operation: str
    partition: int | None = None
    offset: int | None = None
    accepted_at: str | None = None
    delivery: str = Field(
        description=(
            "'committed to the outbox': the router reads it from there; which partners "
            "received it is in the router's audit records"
        )
    )


class AlertStatus(BaseModel):
    """What the gateway knows of one alert."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    alert_type: str
    last_version: int
    cancelled: bool
    versions: list[VersionStatus]


class Health(BaseModel):
    """The server is up and its gateway is started."""

    model_config = ConfigDict(frozen=True)

    status: str
    participant: str
    topic: str


class ProblemDocument(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, str]] = Field(
        default_factory=list, description="each field problem: {field, constraint}"
    )


_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ProblemDocument, "description": text}
    for status, text in {
        400: "malformed JSON or header",
        401: "no token or an unknown token",
        404: "no such alert",
        409: "a request with this Idempotency-Key is still in progress",
        413: f"body larger than {MAX_REQUEST_BYTES} bytes",
        415: "the body is not application/json",
        422: "the alert breaks the contract, or the Idempotency-Key was used for another body",
        429: "the client's rate limit is exceeded (Retry-After)",
        503: "the broker is unreachable: nothing was published, or (outcome-unknown) "
        "a commit was sent and not confirmed (Retry-After)",
    }.items()
}


@dataclass(frozen=True, slots=True)
class Answer:
    """A status and JSON body to send."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def _receipt_body(receipt: Receipt) -> dict[str, Any]:
    return AcceptedMessage(
        status="accepted",
        message_id=receipt.message_id,
        alert_id=receipt.alert_id,
        version=receipt.version,
        operation=receipt.operation.value,
        partition=receipt.partition,
        offset=receipt.offset,
    ).model_dump()


def _retrieved(task: asyncio.Future[Any]) -> None:
    # the outcome of a request whose client went away is recorded, not reported again
    if not task.cancelled():
        task.exception()


def _outcome_unknown(exc: CommitUnknownError) -> Problem:
    return Problem(
        503,
        "outcome-unknown",
        "The broker did not confirm the commit",
        f"{exc}; it may have been published: look for it (GET /alerts/{{id}} after the "
        "server's next start, or the router's audit) before sending it again",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _unavailable(exc: KafkaError) -> Problem:
    return Problem(
        503,
        "broker-unavailable",
        "The broker is unreachable; nothing was published",
        f"{exc}; retry after {RETRY_AFTER_SECONDS} s (with the same Idempotency-Key)",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class GatewayApi:
    """The HTTP gateway's behaviour, over a started ``gateway`` and its ``store``."""

    def __init__(
        self,
        gateway: Gateway,
        store: GatewayStore,
        metrics: Metrics | None = None,
        *,
        rate_per_second: float = DEFAULT_RATE_PER_SECOND,
        burst: int = DEFAULT_BURST,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.metrics = metrics or Metrics()
        self.rate_per_second = rate_per_second
        self.burst = burst
        self.group = GroupCommit(gateway, on_group=self._grouped)
        """Concurrent requests share one outbox transaction."""
        self._buckets: dict[str, TokenBucket] = {}
        self._describe()
        self.settle_pending()

    async def close(self) -> None:
        """Wait until every request taken has its outcome (before the gateway stops)."""
        await self.group.close()

    def _grouped(self, size: int) -> None:
        self.metrics.inc("gateway_http_groups_total")
        self.metrics.inc("gateway_http_grouped_requests_total", size)

    def _describe(self) -> None:
        m = self.metrics
        m.describe("gateway_http_requests_total", "HTTP requests by route and status")
        m.describe("gateway_http_accepted_total", "messages committed to the outbox, by operation")
        m.describe("gateway_http_replayed_total", "answers given again for an Idempotency-Key")
        m.describe("gateway_http_refused_total", "requests refused, by problem type")
        m.describe("gateway_http_publish_seconds_total", "seconds requests waited for their commit")
        m.describe("gateway_http_groups_total", "groups of concurrent requests published")
        m.describe("gateway_http_grouped_requests_total", "requests in those groups")
        m.describe(
            "gateway_http_publish_latency_seconds", "seconds a request waited for its commit"
        )

    # -- guard -------------------------------------------------------------------------

    def authenticate(self, token: str) -> str | None:
        """The client whose token this is, or None."""
        return self.store.client_for_token(token)

    def wait_needed(self, client: str) -> float:
        """0 when ``client`` may make a request now; else seconds to wait."""
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.rate_per_second, self.burst)
        return bucket.take(time.monotonic())

    # -- idempotency -------------------------------------------------------------------

    def settle_pending(self) -> None:
        """Settle requests a stopped server left pending, from the outbox history.

        A pending request published if its alert's version passed the one known before
        it; its answer is then rebuilt from the history, else the record is dropped and
        a retry publishes.
        """
        for record in self.store.pending():
            history = self.gateway.history(record.alert_id or "")
            if history is None or history.version <= record.prior_version:
                self.store.forget(record.client, record.key)
                log.info("gateway_http.pending_dropped", client=record.client, key=record.key)
                continue
            header = history.header
            exact = history.version == record.prior_version + 1
            body = AcceptedMessage(
                status="accepted",
                message_id=header.message_id if exact else "(unknown: later versions followed)",
                alert_id=header.alert_id,
                version=record.prior_version + 1,
                operation=header.operation.value if exact else "(unknown)",
                partition=-1,
                offset=-1,
            ).model_dump()
            self.store.finish(record.client, record.key, 202, body)
            log.info("gateway_http.pending_settled", client=record.client, key=record.key)

    async def accept(
        self,
        client: str,
        key: str | None,
        fingerprint: str,
        alert_id: str,
        publish: Callable[[], Awaitable[Receipt]],
    ) -> Answer:
        """Run ``publish`` once per ``key`` (checked here); the remembered answer for a retry."""
        if key is None:
            return await self._publish(client, publish)
        check_idempotency_key(key)
        known = self.gateway.history(alert_id)
        prior = known.version if known is not None else 0
        existing = self.store.begin(client, key, fingerprint, alert_id, prior, IDEMPOTENCY_KEY_TTL)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise ProblemError(
                    Problem(
                        422,
                        "idempotency-key-reused",
                        "The Idempotency-Key was used for another request",
                        "Idempotency-Key: this key was first sent with a different body or "
                        "alert; use a new key for a new request",
                        (FieldProblem("header:Idempotency-Key", "used for another request"),),
                    )
                )
            if existing.state == "pending" or existing.response is None:
                raise ProblemError(
                    Problem(
                        409,
                        "request-in-progress",
                        "A request with this Idempotency-Key is in progress",
                        "Idempotency-Key: the first request with this key has no answer yet",
                        headers={"Retry-After": "1"},
                    )
                )
            self.metrics.inc("gateway_http_replayed_total")
            return Answer(existing.status or 202, existing.response, replayed=True)
        # A request taken into a group is published even if its client goes away: what
        # the key remembers must follow, so the bookkeeping is not cancelled with it.
        recorded = asyncio.ensure_future(self._publish_recorded(client, key, publish))
        recorded.add_done_callback(_retrieved)
        return await asyncio.shield(recorded)

    async def _publish_recorded(
        self, client: str, key: str, publish: Callable[[], Awaitable[Receipt]]
    ) -> Answer:
        try:
            answer = await self._publish(client, publish)
        except ProblemError as exc:
            if exc.problem.status >= 500:
                self.store.forget(client, key)
            else:
                self.store.finish(client, key, exc.problem.status, exc.problem.document(""))
            raise
        except BaseException:
            self.store.forget(client, key)
            raise
        self.store.finish(client, key, answer.status, answer.body)
        return answer

    async def _publish(self, client: str, publish: Callable[[], Awaitable[Receipt]]) -> Answer:
        started = time.perf_counter()
        try:
            receipt = await publish()
        except ValidationError as exc:
            problems = field_problems_of_strings(exc.problems or (str(exc),))
            raise ProblemError(invalid_body(problems)) from exc
        except CommitUnknownError as exc:
            raise ProblemError(_outcome_unknown(exc)) from exc
        except KafkaError as exc:
            raise ProblemError(_unavailable(exc)) from exc
        finally:
            took = time.perf_counter() - started
            self.metrics.inc("gateway_http_publish_seconds_total", took)
            self.metrics.observe("gateway_http_publish_latency_seconds", took)
        self.store.add_accepted(
            Accepted(
                receipt.message_id,
                receipt.alert_id,
                receipt.version,
                receipt.operation.value,
                receipt.partition,
                receipt.offset,
                client,
                datetime.now(UTC).isoformat(),
            )
        )
        self.metrics.inc("gateway_http_accepted_total", labels={"operation": receipt.operation})
        return Answer(202, _receipt_body(receipt))

    # -- reading -----------------------------------------------------------------------

    def status_of(self, alert_id: str) -> AlertStatus | None:
        """What is known of ``alert_id``: every version accepted here, and the last one."""
        history = self.gateway.history(alert_id)
        if history is None:
            return None
        committed = "committed to the outbox"
        versions = {
            a.version: VersionStatus(
                version=a.version,
                message_id=a.message_id,
                operation=a.operation,
                partition=a.partition,
                offset=a.offset,
                accepted_at=a.accepted_at,
                delivery=committed,
            )
            for a in self.store.accepted_of(alert_id)
        }
        header = history.header
        versions.setdefault(
            header.version,
            VersionStatus(
                version=header.version,
                message_id=header.message_id,
                operation=header.operation.value,
                accepted_at=header.issued_at.isoformat(),
                delivery=committed,
            ),
        )
        return AlertStatus(
            alert_id=alert_id,
            alert_type=header.alert_type.value,
            last_version=header.version,
            cancelled=history.cancelled,
            versions=[versions[v] for v in sorted(versions)],
        )


# -- the guard in front of the routes ----------------------------------------------------


def _problem_bytes(problem: Problem, instance: str) -> bytes:
    return json.dumps(problem.document(instance), ensure_ascii=False).encode("utf-8")


def problem_response(problem: Problem, instance: str) -> Response:
    """``problem`` as an ``application/problem+json`` response."""
    return Response(
        _problem_bytes(problem, instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=dict(problem.headers),
    )


class BodyTooLarge(StarletteHTTPException):
    """A streamed body passed ``MAX_REQUEST_BYTES``."""

    def __init__(self) -> None:
        super().__init__(413, f"the body is larger than {MAX_REQUEST_BYTES} bytes")


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _unauthorized(detail: str, error: str | None) -> Problem:
    challenge = 'Bearer realm="border-exchange"'
    if error:
        challenge += f', error="{error}"'
    return Problem(401, "unauthorized", "Authentication required", detail,
                   headers={"WWW-Authenticate": challenge})  # fmt: skip


class Guard:
    """Authentication, rate limit, content type and body size, before any body is read."""

    def __init__(self, app: ASGIApp, api: Callable[[], GatewayApi | None]) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = self.api()
        path = str(scope.get("path", "/"))
        problem = self._check(scope, api)
        if problem is not None:
            if api is not None:
                api.metrics.inc("gateway_http_refused_total", labels={"problem": problem.slug})
                api.metrics.inc(
                    "gateway_http_requests_total", labels={"status": str(problem.status)}
                )
            await send(
                {
                    "type": "http.response.start",
                    "status": problem.status,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        *((k.lower().encode(), v.encode()) for k, v in problem.headers.items()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _problem_bytes(problem, path)})
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_REQUEST_BYTES:
                    raise BodyTooLarge()
            return message

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and api is not None:
                api.metrics.inc(
                    "gateway_http_requests_total", labels={"status": str(message["status"])}
                )
            await send(message)

        await self.app(scope, limited, counted)

    def _check(self, scope: Scope, api: GatewayApi | None) -> Problem | None:
        headers = _headers(scope)
        if api is None:
            return Problem(503, "not-ready", "Not ready", "the gateway is not started",
                           headers={"Retry-After": str(RETRY_AFTER_SECONDS)})  # fmt: skip
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("send 'Authorization: Bearer <token>'", None)
        client = api.authenticate(token.strip())
        if client is None:
            return _unauthorized("the token is unknown or revoked", "invalid_token")
        scope.setdefault("state", {})["client"] = client
        wait = api.wait_needed(client)
        if wait > 0:
            return Problem(
                429,
                "rate-limited",
                "Too many requests",
                f"client {client} is limited to {api.rate_per_second:g} requests/s "
                f"(bursts of {api.burst})",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        if "idempotency-key" in headers:
            try:
                check_idempotency_key(headers["idempotency-key"])
            except ProblemError as exc:
                return exc.problem
        if scope["method"] in ("POST", "PUT", "PATCH"):
            kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/json" and not (
                kind.startswith("application/") and kind.endswith("+json")
            ):
                return Problem(
                    415,
                    "unsupported-media-type",
                    "The body must be JSON",
                    f"Content-Type: {kind or '(none)'} is not application/json",
                    (FieldProblem("header:Content-Type", "must be application/json"),),
                )
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or len(length) > 18):
                return Problem(400, "invalid-header", "A request header is malformed",
                               "Content-Length: must be a number of bytes")  # fmt: skip
            if length is not None and int(length) > MAX_REQUEST_BYTES:
                return Problem(
                    413,
                    "body-too-large",
                    "The body is too large",
                    f"Content-Length: {length} bytes is more than the "
                    f"{MAX_REQUEST_BYTES} bytes an alert may take",
                    (FieldProblem("header:Content-Length", f"at most {MAX_REQUEST_BYTES}"),),
                )
        return None


# -- the application ---------------------------------------------------------------------


def _api_of(request: Request) -> GatewayApi:
    api: GatewayApi | None = request.app.state.api
    if api is None:  # the guard answers 503 before a route runs
        raise ProblemError(Problem(503, "not-ready", "Not ready", "the gateway is not started"))
    return api


def _client_of(request: Request) -> str:
    return str(request.scope["state"]["client"])


def _answer(answer: Answer, alert_id: str) -> JSONResponse:
    headers = {"Location": f"/alerts/{alert_id}"} if answer.status == 202 else {}
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    media = "application/json" if answer.status < 400 else PROBLEM_JSON
    return JSONResponse(answer.body, answer.status, headers=headers, media_type=media)


def create_app(api: GatewayApi | None) -> FastAPI:
    """The ASGI application serving ``api`` (None: only to render the OpenAPI document)."""
    app = FastAPI(
        title="border-exchange gateway",
        version=__version__,
        description=(
            "A national service publishes, updates and cancels its alerts. Every request "
            "needs a bearer token. 202 means the outbox transaction committed. Errors are "
            "RFC 9457 problem documents (application/problem+json)."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.api = api
    auth = [Security(BEARER)]

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem_response(exc.problem, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        for error in errors:
            if error.get("type") == "json_invalid":
                reason = str((error.get("ctx") or {}).get("error", "JSON decode error"))
                at = error.get("loc", ("body", "?"))[-1]
                return problem_response(malformed_json(f"{reason} at byte {at}"), request.url.path)
        return problem_response(invalid_body(field_problems_of_pydantic(errors)), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}.get(
            exc.status_code, "http-error"
        )
        headers = dict(exc.headers or {})
        problem = Problem(exc.status_code, slug, str(exc.detail), str(exc.detail), headers=headers)
        return problem_response(problem, request.url.path)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.error("gateway_http.crash", path=request.url.path, error=repr(exc))
        problem = Problem(500, "internal-error", "Internal error", "the server failed; see its log")
        return problem_response(problem, request.url.path)

    @app.post(
        "/alerts",
        status_code=202,
        response_model=AcceptedMessage,
        responses=_PROBLEMS,
        dependencies=auth,
        summary="Create or update an alert",
        description=(
            "An alert without alert_id, or with an id never published, creates it; with "
            "the id of an earlier alert, publishes its next version."
        ),
    )
    async def post_alert(
        request: Request,
        alert: Annotated[AlertInput, Body()],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        api = _api_of(request)
        # the body as sent: a retried create without an id is the same request
        fingerprint = "alerts:" + body_fingerprint(await request.body())
        if alert.alert_id is None:
            alert = alert.model_copy(update={"alert_id": uuid.uuid4().hex})
        alert_id = alert.alert_id or ""
        size = len(await request.body())
        answer = await api.accept(
            _client_of(request),
            idempotency_key,
            fingerprint,
            alert_id,
            lambda: api.group.publish(alert, size),
        )
        return _answer(answer, alert_id)

    @app.post(
        "/alerts/{alert_id}/cancel",
        status_code=202,
        response_model=AcceptedMessage,
        responses=_PROBLEMS,
        dependencies=auth,
        summary="Cancel an alert",
    )
    async def cancel_alert(
        request: Request,
        alert_id: AlertIdPath,
        cancel: Annotated[CancelRequest, Body()],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        api = _api_of(request)
        if api.gateway.history(alert_id) is None:
            raise ProblemError(_not_found(alert_id, api.gateway.participant))
        fingerprint = body_fingerprint(json.dumps(["cancel", alert_id, cancel.reason]).encode())
        answer = await api.accept(
            _client_of(request),
            idempotency_key,
            fingerprint,
            alert_id,
            lambda: api.group.publish(Cancellation(alert_id, cancel.reason)),
        )
        return _answer(answer, alert_id)

    @app.get(
        "/alerts/{alert_id}",
        response_model=AlertStatus,
        responses=_PROBLEMS,
        dependencies=auth,
        summary="The versions of an alert and what is known of their delivery",
    )
    async def get_alert(request: Request, alert_id: AlertIdPath) -> AlertStatus:
        api = _api_of(request)
        status = api.status_of(alert_id)
        if status is None:
            raise ProblemError(_not_found(alert_id, api.gateway.participant))
        return status

    @app.get("/health", response_model=Health, responses=_PROBLEMS, dependencies=auth)
    async def health(request: Request) -> Health:
        api = _api_of(request)
        return Health(status="ok", participant=api.gateway.participant, topic=api.gateway.topic)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses=_PROBLEMS,
        dependencies=auth,
        summary="Prometheus metrics (text exposition format)",
    )
    async def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(
            _api_of(request).metrics.render(), media_type="text/plain; version=0.0.4"
        )

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(request.app))

    return _guarded(app)


def _guarded(app: FastAPI) -> FastAPI:
    app.add_middleware(Guard, api=lambda: app.state.api)
    return app


def _not_found(alert_id: str, participant: str) -> Problem:
    return Problem(
        404,
        "not-found",
        "No such alert",
        f"alert_id: {alert_id} was never published by {participant}",
        (FieldProblem("alert_id", f"never published by {participant}"),),
    )


def openapi_document(app: FastAPI | None = None) -> dict[str, Any]:
    """The OpenAPI document of the application (what docs/openapi.json holds)."""
    app = app or create_app(None)
    document: dict[str, Any] = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    return document


def render_openapi() -> str:
    """The committed form of the OpenAPI document: sorted keys, two-space indent."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
