"""The post's page in a real browser: headless Chromium (Debian's) driven by Playwright.

``border-exchange post serve`` runs as its own process over a store filled through the
store's API with sealed sample alerts (no Kafka). The officer logs in, searches in
French and in English, opens a hit whose photo was withheld and one whose photo was
received, opens the status page, and logs out, with the keyboard where an officer
would use it. Screenshots are saved under ``test-artifacts/`` (ignored by git).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from border_exchange.adapters.kafka_launcher import free_port
from border_exchange.adapters.post_store import PostStore
from tests.post_site import OFFICER, PASSWORD, add_officers, fill_store
from tests.unit.test_post_store import FEED

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "post-page"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return fill_store(tmp_path / "post.db")


@contextlib.contextmanager
def serving(store: Path, *options: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``post serve`` over ``store`` (with ``options``) as its own process; its address."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "border_exchange", "post", "serve", "--db", str(store),
         "--port", str(port), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"post serve did not start: {output}")
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def server(store: Path) -> Iterator[str]:
    add_officers(store)
    with serving(store) as url:
        yield url


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run does)")
def test_an_officer_logs_in_searches_opens_hits_checks_status_and_logs_out(
    server: str, store: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    with playwright_sync.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.on(
            "request",
            lambda request: (
                None if request.url.startswith((server, "data:")) else outside.append(request.url)
            ),
        )

        page.goto(f"{server}/")
        assert page.url.endswith("/login"), "without a session the page sends to login"
        assert page.locator("h1").inner_text() == "Connexion"
        page.keyboard.type(OFFICER)  # the name field has the focus
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server}/")
        page.screenshot(path=str(ARTIFACTS / "1-search-fr.png"), full_page=True)

        page.fill("#q", "Jean Baptiste Ngakloa")  # order swapped, one typo
        page.keyboard.press("Enter")
        page.wait_for_selector(".results")
        text = page.locator("main").inner_text()
        assert "SIGNALEMENT TROUVÉ" in text
        assert "une lettre de différence" in text
        page.screenshot(path=str(ARTIFACTS / "2-results-fr.png"), full_page=True)

        page.click("a.open")
        page.wait_for_selector("#photo-withheld")
        assert "Photo non communiquée" in page.locator("#photo-withheld").inner_text()
        assert "documents d'identité" in page.locator("#withheld").inner_text()
        assert page.locator("img").count() == 0
        page.screenshot(path=str(ARTIFACTS / "3-photo-withheld-fr.png"), full_page=True)

        page.click("a[hreflang=en]")  # the language switch
        page.wait_for_selector("text=Sections withheld")
        page.goto(f"{server}/")
        page.fill("#q", "بيتر لادو")  # Arabic script, the record also in Latin letters
        page.keyboard.press("Enter")
        page.wait_for_selector(".results")
        assert "HIT" in page.locator("main").inner_text()
        assert "Name on record: بيتر واني لادو" in page.locator("main").inner_text()
        page.screenshot(path=str(ARTIFACTS / "4-results-en.png"), full_page=True)

        page.click("a.open")
        photo = page.locator("#photo")
        photo.wait_for()
        assert photo.evaluate("img => img.complete && img.naturalWidth > 0")
        page.screenshot(path=str(ARTIFACTS / "5-photo-shown-en.png"), full_page=True)

        page.goto(f"{server}/")
        page.fill("#q", "x" * 10_000)
        page.keyboard.press("Enter")
        assert "Query too long" in page.locator("#problem").inner_text()

        with PostStore.open(store) as feeds:  # as ``post run`` does after each fetch
            feeds.record_sync({(FEED, 0): 3})
        page.click("text=Sync status")
        page.wait_for_selector("#link")
        assert "up" in page.locator("#link").inner_text()
        assert "bx.COD.from.CAF/0" in page.locator("table").inner_text()
        page.screenshot(path=str(ARTIFACTS / "6-status-en.png"), full_page=True)

        page.focus("#logout")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server}/login")
        page.goto(f"{server}/status")
        assert page.url.endswith("/login"), "after logout the session is gone"
        page.screenshot(path=str(ARTIFACTS / "7-logged-out.png"), full_page=True)
        browser.close()
    assert not outside, f"the page loaded something from elsewhere: {outside}"
    assert len(list(ARTIFACTS.glob("*.png"))) >= 7
