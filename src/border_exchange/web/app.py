"""``post serve``: the border post's web page, from its local store, in French or English.

Server-rendered (Starlette and Jinja2, no script at all); everything it shows comes
from the post's own files, so it works with the link down, and it loads nothing from
elsewhere (the stylesheet is served by the page itself; the photo is inlined). Every
page but the login needs a session; every form carries a CSRF token; every search and
every alert opened is written to the consultation log. Bad input gives a message on the
page in the officer's language, never a traceback; an unreadable store says so and the
log records it.

On an alert's page an officer reports a hit (``POST /alert/<origin>/<id>/hit``) when the
page was started with the post's key (``post serve --key``): the form is checked exactly
as ``post report-hit`` checks it (``services.hits.report_entered``), signed and queued in
the post's hit queue, which ``post run`` sends; the page lists this post's reports on the
alert, queued or sent, with the origin's acknowledgement once it came back.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import secrets
import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import structlog
from argon2 import PasswordHasher
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from border_exchange.adapters.hit_queue import HitQueue, PostHit
from border_exchange.adapters.officer_db import OfficerDB, Role, Session
from border_exchange.adapters.post_store import PostStore, StoredAlert
from border_exchange.domain.consultation import Search
from border_exchange.domain.envelope import Header
from border_exchange.domain.hits import HitAction
from border_exchange.domain.labels import (
    LANGUAGES,
    Lang,
    content_text,
    label,
    language_from_header,
    when,
)
from border_exchange.domain.limits import MAX_HIT_FIELD_CHARS, MAX_HIT_TEXT_CHARS
from border_exchange.domain.lookup import MAX_QUERY_CHARS, SearchKind
from border_exchange.errors import LoginRefused, StoreError, ValidationError
from border_exchange.services import hits, post_search
from border_exchange.services.post import PROBE_EVERY

log = structlog.get_logger(__name__)

SESSION_COOKIE: Final = "bx_session"
LOGIN_COOKIE: Final = "bx_login_csrf"
LANG_COOKIE: Final = "bx_lang"
LINK_UP_WITHIN: Final = timedelta(seconds=6 * PROBE_EVERY)
"""The link counts as up while the last successful fetch is at most this old."""

MAX_FORM_BYTES: Final = 64 * 1024

_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class PostSite:
    """What the page serves from: the store file and the officers' file."""

    store_path: Path
    officers_path: Path
    secure_cookies: bool = False
    hasher: PasswordHasher = field(default_factory=PasswordHasher, repr=False)
    reporter: hits.Reporter | None = None
    """Who signs the hit reports entered on the page; None: the page takes none."""
    _store: PostStore | None = field(default=None, init=False)
    _officers: OfficerDB | None = field(default=None, init=False)
    _hits: HitQueue | None = field(default=None, init=False)

    def officers(self) -> OfficerDB:
        """The officers' file (opened on first use, in the server's thread)."""
        if self._officers is None:
            self._officers = OfficerDB(self.officers_path, hasher=self.hasher)
        return self._officers

    def _existing_store(self) -> Path:
        if not self.store_path.exists():
            raise StoreError(f"no post store at {self.store_path}")
        return self.store_path

    def store(self) -> PostStore:
        """The post store; ``StoreError`` when it is missing or cannot be opened."""
        if self._store is None:
            self._store = PostStore.open(self._existing_store())
        return self._store

    def hit_queue(self) -> HitQueue:
        """The post's hit reports, in the store's file; ``StoreError`` when unreadable."""
        if self._hits is None:
            self._hits = HitQueue(self._existing_store())
        return self._hits

    def forget_store(self) -> None:
        """Drop the store connections after an error, so that the next request reopens them."""
        if self._store is not None:
            with contextlib.suppress(sqlite3.Error):
                self._store.close()
        if self._hits is not None:
            with contextlib.suppress(sqlite3.Error):
                self._hits.close()
        self._store = None
        self._hits = None

    def close(self) -> None:
        """Close both files."""
        self.forget_store()
        if self._officers is not None:
            self._officers.close()
            self._officers = None


_TEMPLATES: Final = Environment(
    loader=PackageLoader("border_exchange.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _lang(request: Request) -> Lang:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return "fr" if chosen == "fr" else "en"
    return language_from_header(request.headers.get("accept-language"))


def _page(
    request: Request,
    template: str,
    status: int = 200,
    session: Session | None = None,
    **values: Any,
) -> HTMLResponse:
    lang = _lang(request)

    def t(key: str, **more: object) -> str:
        return label(lang, key, **more)

    body = _TEMPLATES.get_template(template).render(
        t=t, lang=lang, languages=LANGUAGES, session=session, path=request.url.path,
        when=lambda v: when(v, lang), **values,
    )  # fmt: skip
    response = HTMLResponse(body, status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, samesite="strict", httponly=True)
    return response


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _site(request: Request) -> PostSite:
    site: PostSite = request.app.state.site
    return site


def _session(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    return None if not token else _site(request).officers().session(token)


def _to_login(request: Request) -> Response:
    return RedirectResponse("/login", status_code=303)


async def _form(request: Request) -> FormData | None:
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return None
    return await request.form(max_files=0, max_fields=20)


def _csrf_ok(form: FormData | None, expected: str | None) -> bool:
    given = None if form is None else form.get("csrf")
    return (
        isinstance(given, str) and expected is not None and secrets.compare_digest(given, expected)
    )


def _refused(request: Request, session: Session | None = None) -> Response:
    return _page(request, "error.html", 403, session, message="csrf_refused")


# -- login and logout ------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    """The login form, with a CSRF token bound to a cookie (no session yet)."""
    token = secrets.token_urlsafe(32)
    response = _page(request, "login.html", csrf=token, problem=None)
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_site(request).secure_cookies
    )
    return response


async def login(request: Request) -> Response:
    """Check the name and password; open a session or say no (one message for every no)."""
    form = await _form(request)
    if not _csrf_ok(form, request.cookies.get(LOGIN_COOKIE)):
        return _refused(request)
    assert form is not None  # _csrf_ok is False without a form
    name, password = str(form.get("officer") or ""), str(form.get("password") or "")
    try:
        token, session = _site(request).officers().login(name.strip(), password)
    except LoginRefused as refused:
        log.warning("post.web.login_refused", officer=name[:64], reason=refused.reason.value)
        fresh = secrets.token_urlsafe(32)
        response = _page(request, "login.html", 401, csrf=fresh, problem="login_refused")
        response.set_cookie(LOGIN_COOKIE, fresh, httponly=True, samesite="strict")
        return response
    log.info("post.web.login", officer=session.officer.name)
    redirect = RedirectResponse("/", status_code=303)
    redirect.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict",
        secure=_site(request).secure_cookies,
        max_age=int((session.expires_at - datetime.now(UTC)).total_seconds()),
    )  # fmt: skip
    redirect.delete_cookie(LOGIN_COOKIE)
    return redirect


async def logout(request: Request) -> Response:
    """End the session (a POST with the session's CSRF token)."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    if not _csrf_ok(await _form(request), session.csrf):
        return _refused(request, session)
    _site(request).officers().logout(request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- searching ---------------------------------------------------------------------------


def _search_page(request: Request, session: Session, status: int = 200, **values: Any) -> Response:
    values.setdefault("kind", "name")
    values.setdefault("query", "")
    values.setdefault("dob", "")
    return _page(
        request, "search.html", status, session,
        kinds=[k.value for k in SearchKind], max_chars=MAX_QUERY_CHARS, **values,
    )  # fmt: skip


async def home(request: Request) -> Response:
    """The search form."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    return _search_page(request, session)


async def search(request: Request) -> Response:
    """Run the search in the form, log it, show the ranked results with why each matched."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    form = await _form(request)
    if not _csrf_ok(form, session.csrf):
        return _refused(request, session)
    assert form is not None  # _csrf_ok is False without a form
    kind, text, dob = (str(form.get(k) or "") for k in ("kind", "q", "dob"))
    site, lang = _site(request), _lang(request)
    try:
        store: PostStore | None = site.store()
    except StoreError:
        store = None
    try:
        outcome = post_search.search(
            store, site.officers(), officer=session.officer.name, channel="web",
            kind=kind, text=text, dob=dob or None,
        )  # fmt: skip
    except StoreError as exc:
        site.forget_store()
        log.error("post.web.store_error", error=str(exc))
        return _search_page(
            request, session, 503, kind=kind, query=text[:MAX_QUERY_CHARS], dob=dob[:32],
            problem="store_error",
        )  # fmt: skip
    shown = text if outcome.problem is None else text[:MAX_QUERY_CHARS]
    results = [
        {"found": f, "why": post_search.explain(f, outcome.query.kind, lang)}
        for f in outcome.found
        if outcome.query is not None
    ]
    return _search_page(
        request, session, 200 if outcome.problem is None else 422, kind=kind, query=shown,
        dob=dob[:32], problem=None if outcome.problem is None else outcome.problem.value,
        results=results, searched=outcome.problem is None,
    )  # fmt: skip


# -- the alert card ----------------------------------------------------------------------


def _photo(alert: StoredAlert) -> tuple[str, str | None]:
    """(state, data URI): 'shown', 'withheld', 'missing' (announced, unreadable) or 'none'."""
    if "photo" in alert.withheld:
        return "withheld", None
    photo = alert.sections.get("photo")
    if photo is None:
        return "none", None
    media = str(photo.get("media_type") or "")
    data = str(photo.get("data") or "")
    if media not in ("image/jpeg", "image/png") or not data:
        return "missing", None
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "missing", None
    return "shown", f"data:{media};base64,{data}"


def _fields(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, content_text(value))
        for name, value in content.items()
        if value not in (None, [], "", {})
    ]


def _consulted(
    site: PostSite,
    session: Session,
    kind: str,
    origin: str,
    alert_id: str,
    alert: StoredAlert | None,
    outcome: str,
) -> None:
    site.officers().log(
        Search(datetime.now(UTC), session.officer.name, "web", kind,
               f"{origin}/{alert_id}"[:200], None,
               () if alert is None else (post_search.hit_reference(alert),), outcome[:500])
    )  # fmt: skip


def _card(
    request: Request,
    session: Session,
    alert: StoredAlert,
    header: Header | None,
    status: int = 200,
    **values: Any,
) -> Response:
    """The alert's page, with the hit form and this post's reports on the alert."""
    site = _site(request)
    photo_state, photo_uri = _photo(alert)
    sections = [
        (name, _fields(content)) for name, content in alert.sections.items() if name != "photo"
    ]
    grading = None if header is None else (
        f"{header.source_reliability.value} / {header.information_reliability.value}"
    )  # fmt: skip
    reports: list[PostHit] = [
        hit for hit in site.hit_queue().reports()
        if hit.alert_origin == alert.origin and hit.alert_id == alert.alert_id
    ]  # fmt: skip
    values.setdefault("entry", {})
    values.setdefault("problems", ())
    return _page(
        request, "alert.html", status, session, alert=alert, sections=sections,
        photo_state=photo_state, photo_uri=photo_uri, grading=grading, reports=reports,
        reporting=site.reporter is not None, actions=[a.value for a in HitAction],
        text_limit=MAX_HIT_TEXT_CHARS, field_limit=MAX_HIT_FIELD_CHARS, **values,
    )  # fmt: skip


async def alert_card(request: Request) -> Response:
    """One alert: header, sections received and withheld, the photo when received; the hit
    form and this post's reports on it."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    origin, alert_id = request.path_params["origin"], request.path_params["alert_id"]
    site = _site(request)
    try:
        store = site.store()
        alert = store.get(origin, alert_id)
        header = None if alert is None else store.header_of(origin, alert_id)
        if alert is None:
            _consulted(site, session, "open", origin, alert_id, None, "no_hit")
            return _page(request, "error.html", 404, session, message="not_found")
        queued = request.query_params.get("queued")
        page = _card(request, session, alert, header, queued=queued)
    except (StoreError, sqlite3.DatabaseError) as exc:
        site.forget_store()
        _consulted(site, session, "open", origin, alert_id, None, f"store_error: {exc}")
        return _page(request, "error.html", 503, session, message="store_error")
    _consulted(site, session, "open", origin, alert_id, alert, "hit")
    return page


_ENTRY_FIELDS: Final = ("action", "reason", "at", "place", "contact", "remarks", "version")


async def report_hit(request: Request) -> Response:
    """Check, sign and queue the hit entered on an alert's page (as ``post report-hit``).

    Bad input gives the page again with every problem named and nothing queued; a good
    report is queued for ``post run`` to send, and the page shows it. Each attempt is in
    the consultation log (``hit_report``: queued, or refused and why).
    """
    session = _session(request)
    if session is None:
        return _to_login(request)
    origin, alert_id = request.path_params["origin"], request.path_params["alert_id"]
    site = _site(request)
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        _consulted(site, session, "hit_report", origin, alert_id, None, "refused: form too large")
        return _page(request, "error.html", 413, session, message="hit_form_too_large",
                     details={"limit": f"{MAX_HIT_TEXT_CHARS:,}"})  # fmt: skip
    form = await _form(request)
    if not _csrf_ok(form, session.csrf):
        return _refused(request, session)
    assert form is not None  # _csrf_ok is False without a form
    entered = {name: str(form.get(name) or "") for name in _ENTRY_FIELDS}
    try:
        store = site.store()
        alert = store.get(origin, alert_id)
        if alert is None:
            _consulted(site, session, "hit_report", origin, alert_id, None, "refused: not_found")
            return _page(request, "error.html", 404, session, message="not_found")
        header = store.header_of(origin, alert_id)
        if site.reporter is None:
            _consulted(site, session, "hit_report", origin, alert_id, alert, "refused: no key")
            return _card(request, session, alert, header, 409, problems=("hits_not_set_up",))
        entry = hits.HitEntry(alert_id=alert_id, origin=origin, **entered)
        try:
            report, value = hits.report_entered(store, site.reporter, entry)
        except ValidationError as invalid:
            _consulted(site, session, "hit_report", origin, alert_id, alert,
                       "refused: " + "; ".join(invalid.problems))  # fmt: skip
            # What was typed stays in the form; the version is again the one held.
            return _card(request, session, alert, header, 422, problems=invalid.problems,
                         entry={**entered, "version": ""})  # fmt: skip
        site.hit_queue().queue(report, value)
    except (StoreError, sqlite3.DatabaseError) as exc:
        site.forget_store()
        log.error("post.web.store_error", error=str(exc))
        _consulted(site, session, "hit_report", origin, alert_id, None, f"store_error: {exc}")
        return _page(request, "error.html", 503, session, message="store_error")
    _consulted(site, session, "hit_report", origin, alert_id, alert, f"queued: {report.hit_id}")
    log.info(
        "post.web.hit_queued", hit_id=report.hit_id, alert_id=alert_id, officer=session.officer.name
    )
    target = f"/alert/{quote(origin, safe='')}/{quote(alert_id, safe='')}?queued={report.hit_id}"
    return RedirectResponse(target, status_code=303)


# -- status ------------------------------------------------------------------------------


async def status(request: Request) -> Response:
    """Each feed: last record received, lag, catch-up progress; the link up or down."""
    session = _session(request)
    if session is None:
        return _to_login(request)
    site = _site(request)
    try:
        store = site.store()
        state, received = store.status(), store.last_received()
    except (StoreError, sqlite3.DatabaseError) as exc:
        site.forget_store()
        log.error("post.web.store_error", error=str(exc))
        return _page(request, "error.html", 503, session, message="store_error")
    now = datetime.now(UTC)
    link_up = state.last_sync is not None and now - state.last_sync <= LINK_UP_WITHIN
    feeds = []
    for feed in state.feeds:
        progress = None
        if feed.end_offset:
            progress = min(100, round(100 * feed.next_offset / feed.end_offset))
        feeds.append({"feed": feed, "progress": progress, "last": received.get(feed.topic)})
    return _page(request, "status.html", 200, session, state=state, feeds=feeds, link_up=link_up)


# -- errors ------------------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "page_not_found" if code == 404 else "server_error"
    return _headers(_page(request, "error.html", code, _safe_session(request), message=message))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("post.web.error", error=repr(exc), path=request.url.path)
    return _headers(_page(request, "error.html", 500, None, message="server_error"))


def _safe_session(request: Request) -> Session | None:
    with contextlib.suppress(Exception):
        return _session(request)
    return None


def create_app(site: PostSite) -> Starlette:
    """The post's web application over ``site``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            site.close()

    routes = [
        Route("/", home),
        Route("/search", search, methods=["POST"]),
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/alert/{origin}/{alert_id}", alert_card),
        Route("/alert/{origin}/{alert_id}/hit", report_hit, methods=["POST"]),
        Route("/status", status),
        Mount("/static", StaticFiles(packages=[("border_exchange.web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_security_headers)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.site = site
    return app


async def _security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
    return _headers(await call_next(request))


__all__ = ["PostSite", "Role", "create_app"]
