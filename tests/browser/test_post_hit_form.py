"""The hit form in a real browser: an officer finds the subject of a partner's alert, reports
the hit on the alert's page, is told what is wrong first, then sees the report queued; once
``post run`` has sent it and the origin answered, the page shows the answer.

``post serve`` runs as its own process with the post's key (passphrase from the
environment, as at a post), over a store filled through its API (no Kafka); what
``post run`` does (mark sent, keep the acknowledgement) is done through the hit queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.adapters.keyfiles import write_private_key
from border_exchange.adapters.officer_db import OfficerDB, officers_path
from border_exchange.demo.sandbox import make_sandbox, trust_store_yaml
from border_exchange.domain.hits import MessageKind, ack_of, decode_report, verify_signed
from tests.browser.test_post_page import ARGS, ARTIFACTS, CHROMIUM, serving
from tests.post_site import OFFICER, PASSWORD, QUICK_HASHER, add_officers, fill_store

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.real_clock]

PASSPHRASE = "kasindi-post-passphrase"
OWNER = "COD.post.kasindi"


@pytest.fixture
def post(tmp_path: Path) -> Iterator[tuple[str, Path, bytes]]:
    """COD's post kasindi (holding CAF's alerts) serving its page with its key."""
    store = fill_store(tmp_path / "post.db")
    add_officers(store)
    sandbox = make_sandbox(
        ["CAF", "COD"], 'version: "none"\nagreements: []\n', posts={"COD": ["kasindi"]}
    )
    trust = tmp_path / "trust.yaml"
    trust.write_text(trust_store_yaml(sandbox.trust), encoding="utf-8")
    key = tmp_path / f"{sandbox.key_ids[OWNER]}.pem"
    write_private_key(key, sandbox.keys[OWNER], PASSPHRASE.encode())
    options = ("--participant", "COD", "--post", "kasindi", "--key", str(key),
               "--trust", str(trust))  # fmt: skip
    with serving(store, *options, env={"BX_KEY_PASSPHRASE": PASSPHRASE}) as url:
        yield url, store, bytes(sandbox.keys[OWNER].verify_key)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run does)")
def test_an_officer_reports_a_hit_on_the_alerts_page_and_sees_the_answer(
    post: tuple[str, Path, bytes],
) -> None:
    server, store, public_key = post
    shots = ARTIFACTS.parent / "hit-form"
    shots.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 844})
        page = page.new_page()
        page.goto(f"{server}/login")
        page.fill("#officer", OFFICER)
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server}/")
        page.fill("#q", "Peter Ladu")
        page.keyboard.press("Enter")
        page.click("a.open")
        page.wait_for_selector("#hits")
        assert "Aucune réponse positive signalée par ce poste" in page.locator("#hits").inner_text()

        # Nothing done, but no reason given: refused on the page, nothing queued.
        page.check("#action-NOT_ACTED")
        page.fill("#place", "Kasindi, barrière principale")
        page.fill("#contact", "+243 81 000 0000")
        page.fill("#remarks", "vu au contrôle, reparti vers Beni")
        page.click("#report-hit")
        problems = page.locator("#hit-problems")
        problems.wait_for()
        assert "not_acted_reason: required when the action is NOT_ACTED" in problems.inner_text()
        assert page.input_value("#remarks") == "vu au contrôle, reparti vers Beni"  # kept
        with HitQueue(store) as queue:
            assert queue.reports() == []
        page.screenshot(path=str(shots / "1-refused-fr.png"), full_page=True)

        page.fill("#reason", "armé, l'équipe était seule")
        page.click("#report-hit")
        page.wait_for_selector("#queued")
        assert "signée et mise en file" in page.locator("#queued").inner_text()
        assert "en file (pas encore envoyée)" in page.locator(".reports").inner_text()
        page.screenshot(path=str(shots / "2-queued-fr.png"), full_page=True)
        with HitQueue(store) as queue:  # as 'post run' sends it, then 'post hits' keeps the ack
            ((hit_id, alert_id, value),) = queue.queued()
            verify_signed(value, MessageKind.HIT_REPORT, public_key)
            report = decode_report(value)
            assert (alert_id, report.reporter, report.post) == ("wp-en", "COD", "kasindi")
            assert report.not_acted_reason == "armé, l'équipe était seule"
            queue.mark_sent(hit_id, datetime.now(UTC))
            ack = ack_of(
                report, key_id="CAF-2026-01", instructions="Ne pas intervenir ; rappelez-nous",
                now=datetime.now(UTC),
            )  # fmt: skip
            assert queue.acknowledge(ack)
            assert queue.reports()[0].state is SendState.SENT

        page.reload()
        answer = page.locator(f"#hit-{hit_id}")
        assert "envoyée le" in answer.inner_text()
        assert "Accusé de réception de CAF" in answer.inner_text()
        assert "Ne pas intervenir ; rappelez-nous" in answer.inner_text()
        page.screenshot(path=str(shots / "3-acknowledged-fr.png"), full_page=True)
        browser.close()
    with OfficerDB(officers_path(store), hasher=QUICK_HASHER) as officers:
        logged = [(e.search.kind, e.search.outcome) for e in officers.entries()]
    assert ("hit_report", f"queued: {hit_id}") in logged
    refused = [o for k, o in logged if k == "hit_report" and o.startswith("refused: ")]
    assert refused == ["refused: not_acted_reason: required when the action is NOT_ACTED"]
