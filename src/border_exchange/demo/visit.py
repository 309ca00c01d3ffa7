"""Scripted visits of a post's page, for the demo: serve it, log in, search once; or open
an alert and report a hit through its form.

The page is served by uvicorn inside the caller's event loop on a free loopback port;
the visit is plain HTTP from the standard library (cookies, CSRF token from the form),
as a browser would make it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import http.cookiejar
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from border_exchange.adapters.kafka_launcher import free_port
from border_exchange.adapters.officer_db import OfficerDB, Role, officers_path
from border_exchange.errors import StoreError
from border_exchange.services.hits import Reporter
from border_exchange.web.app import PostSite, create_app

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_RESULT = re.compile(r'class="open">([^<]+)</a>')
_WHY = re.compile(r'<div class="why">.*?<ul>(.*?)</ul>', re.S)
_ITEM = re.compile(r"<li>(.*?)</li>", re.S)
_QUEUED = re.compile(r'<p id="queued"[^>]*>(.*?)</p>', re.S)
_PROBLEMS = re.compile(
    r'<div class="problem" role="alert" id="hit-problems">.*?<ul>(.*?)</ul>', re.S
)


@dataclass(frozen=True, slots=True)
class Visit:
    """What the visit saw: the page's address, the results, why the first one matched."""

    url: str
    results: tuple[str, ...]
    why: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PageHit:
    """What reporting a hit on the page did: refusals first, then the report queued."""

    url: str
    refused: tuple[str, ...]
    """The problems the page named for the first, incomplete form."""
    hit_id: str | None
    queued: str | None
    """The page's message once the report was queued."""


def _open(
    opener: urllib.request.OpenerDirector, url: str, form: Mapping[str, str] | None
) -> tuple[str, str]:
    """The page at ``url`` (the form posted when given) and the address it ended at."""
    data = None if form is None else urllib.parse.urlencode(form).encode()
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=30) as answer:
            return answer.read().decode(), answer.geturl()
    except urllib.error.HTTPError as refused:  # a page refusing the form: read what it says
        return refused.read().decode(), url


def _fetch(opener: urllib.request.OpenerDirector, url: str, form: dict[str, str] | None) -> str:
    return _open(opener, url, form)[0]


def _logged_in(
    url: str, officer: str, password: str, lang: str
) -> tuple[urllib.request.OpenerDirector, str]:
    """A browser session of ``officer`` and its CSRF token."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    opener.addheaders = [("Accept-Language", lang)]
    login = _fetch(opener, f"{url}/login", None)
    csrf = _CSRF.search(login)
    if csrf is None:
        raise StoreError("the post page's login form carries no CSRF token")
    home = _fetch(
        opener,
        f"{url}/login",
        {"csrf": csrf.group(1), "officer": officer, "password": password},
    )
    token = _CSRF.search(home)
    if token is None:
        raise StoreError("the post page did not open a session")
    return opener, token.group(1)


def _browse(url: str, officer: str, password: str, query: str, lang: str) -> Visit:
    opener, token = _logged_in(url, officer, password, lang)
    page = _fetch(opener, f"{url}/search", {"csrf": token, "kind": "name", "q": query, "dob": ""})
    why = _WHY.search(page)
    lines = () if why is None else tuple(html.unescape(i) for i in _ITEM.findall(why.group(1)))
    return Visit(url, tuple(html.unescape(r) for r in _RESULT.findall(page)), lines)


def _report(
    url: str, officer: str, password: str, alert: str, forms: tuple[Mapping[str, str], ...],
    lang: str,
) -> PageHit:  # fmt: skip
    opener, token = _logged_in(url, officer, password, lang)
    _fetch(opener, f"{url}/alert/{alert}", None)  # the officer opens the alert's page
    refused: tuple[str, ...] = ()
    page, where = "", url
    for form in forms:
        page, where = _open(opener, f"{url}/alert/{alert}/hit", {"csrf": token, **form})
        problems = _PROBLEMS.search(page)
        if problems is not None:
            refused += tuple(html.unescape(i) for i in _ITEM.findall(problems.group(1)))
    queued = _QUEUED.search(page)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(where).query)
    hit_id = query["queued"][0] if query.get("queued") else None
    return PageHit(
        url,
        refused,
        hit_id,
        None if queued is None else " ".join(html.unescape(queued.group(1)).split()),
    )


def _new_officer(store: Path, officer: str) -> str:
    """Create ``officer`` with a random password (returned); it must be new."""
    password = secrets.token_urlsafe(18)
    with OfficerDB(officers_path(store)) as officers:
        if officer in {o.name for o in officers.officers()}:
            raise ValueError(f"officer {officer!r} exists already")
        officers.add(officer, password, Role.OFFICER)
    return password


@contextlib.asynccontextmanager
async def _served(site: PostSite) -> AsyncIterator[str]:
    """``site``'s page served on a free loopback port while inside; its address."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(site), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def visit_post_page(store: Path, officer: str, query: str, lang: str) -> Visit:
    """Serve ``store``'s page, create ``officer`` (if new), log in, search ``query``."""
    password = _new_officer(store, officer)
    async with _served(PostSite(store, officers_path(store))) as url:
        return await asyncio.to_thread(_browse, url, officer, password, query, lang)


async def report_on_page(
    store: Path,
    officer: str,
    reporter: Reporter,
    alert: str,
    forms: tuple[Mapping[str, str], ...],
    lang: str,
) -> PageHit:
    """Serve ``store``'s page with the post's key (``post serve --key``), create
    ``officer``, open ``alert`` (``ORIGIN/alert-id``) and post each hit form in turn."""
    password = _new_officer(store, officer)
    site = PostSite(store, officers_path(store), reporter=reporter)
    async with _served(site) as url:
        return await asyncio.to_thread(_report, url, officer, password, alert, forms, lang)
