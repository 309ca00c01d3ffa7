"""A scripted visit of a post's page, for the demo: serve it, log in, search once.

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
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from border_exchange.adapters.kafka_launcher import free_port
from border_exchange.adapters.officer_db import OfficerDB, Role, officers_path
from border_exchange.errors import StoreError
from border_exchange.web.app import PostSite, create_app

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_RESULT = re.compile(r'class="open">([^<]+)</a>')
_WHY = re.compile(r'<div class="why">.*?<ul>(.*?)</ul>', re.S)
_ITEM = re.compile(r"<li>(.*?)</li>", re.S)


@dataclass(frozen=True, slots=True)
class Visit:
    """What the visit saw: the page's address, the results, why the first one matched."""

    url: str
    results: tuple[str, ...]
    why: tuple[str, ...]


def _fetch(opener: urllib.request.OpenerDirector, url: str, form: dict[str, str] | None) -> str:
    data = None if form is None else urllib.parse.urlencode(form).encode()
    with opener.open(urllib.request.Request(url, data=data), timeout=30) as answer:
        text: str = answer.read().decode()
        return text


def _browse(url: str, officer: str, password: str, query: str, lang: str) -> Visit:
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
    page = _fetch(
        opener, f"{url}/search", {"csrf": token.group(1), "kind": "name", "q": query, "dob": ""}
    )
    why = _WHY.search(page)
    lines = () if why is None else tuple(html.unescape(i) for i in _ITEM.findall(why.group(1)))
    return Visit(url, tuple(html.unescape(r) for r in _RESULT.findall(page)), lines)


async def visit_post_page(store: Path, officer: str, query: str, lang: str) -> Visit:
    """Serve ``store``'s page, create ``officer`` (if new), log in, search ``query``."""
    password = secrets.token_urlsafe(18)
    with OfficerDB(officers_path(store)) as officers:
        if officer in {o.name for o in officers.officers()}:
            raise ValueError(f"officer {officer!r} exists already")
        officers.add(officer, password, Role.OFFICER)
    port = free_port()
    site = PostSite(store, officers_path(store))
    server = uvicorn.Server(
        uvicorn.Config(create_app(site), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
            await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        return await asyncio.to_thread(_browse, url, officer, password, query, lang)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
