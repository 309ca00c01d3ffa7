"""The hit form on an alert's page: checked as ``post report-hit`` checks it, signed with the
post's key, queued for ``post run``; bad input named on the page with nothing queued; every
attempt in the consultation log; the post's reports and the origin's answers shown."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from starlette.testclient import TestClient

from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.adapters.officer_db import OfficerDB, officers_path
from border_exchange.domain.hits import (
    HitAction,
    MessageKind,
    ack_of,
    decode_report,
    verify_signed,
)
from border_exchange.domain.limits import MAX_HIT_TEXT_CHARS
from border_exchange.services.hits import Reporter
from border_exchange.web.app import PostSite, create_app
from tests.post_site import QUICK_HASHER, add_officers, fill_store
from tests.unit.test_post_web import _login

KEY = SigningKey.generate()
REPORTER = Reporter("COD", "kasindi", KEY, "COD-kasindi-2026-01")
GOOD = {
    "action": "ARRESTED",
    "place": "Kasindi crossing",
    "contact": "+243 81 000 0000",
    "remarks": "held at the post",
    "version": "1",
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = fill_store(tmp_path / "post.db")
    add_officers(path)
    return path


def _client(store: Path, reporter: Reporter | None) -> Iterator[TestClient]:
    site = PostSite(store, officers_path(store), hasher=QUICK_HASHER, reporter=reporter)
    with TestClient(create_app(site), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def client(store: Path) -> Iterator[TestClient]:
    yield from _client(store, REPORTER)


def _report(
    client: TestClient, csrf: str, alert: str = "CAF/wp-en", **fields: str
) -> httpx.Response:
    answer: httpx.Response = client.post(  # Starlette's client is typed loosely
        f"/alert/{alert}/hit", data={"csrf": csrf, **GOOD, **fields}
    )
    return answer


def _queue(store: Path) -> list[str]:
    with HitQueue(store) as queue:
        return [hit.hit_id for hit in queue.reports()]


def _log(store: Path) -> list[tuple[str, str]]:
    with OfficerDB(officers_path(store), hasher=QUICK_HASHER) as officers:
        return [(e.search.kind, e.search.outcome) for e in officers.entries()]


def test_a_good_report_is_signed_queued_shown_and_logged(client: TestClient, store: Path) -> None:
    csrf = _login(client)
    card = client.get("/alert/CAF/wp-en")
    assert 'action="/alert/CAF/wp-en/hit"' in card.text
    assert "No hit reported by this post on this alert." in card.text
    answer = _report(client, csrf)
    assert answer.status_code == 303
    target = answer.headers["location"]
    with HitQueue(store) as queue:
        (kept,) = queue.reports()
        ((hit_id, alert_id, value),) = queue.queued()
    assert target == f"/alert/CAF/wp-en?queued={hit_id}"
    assert (kept.state, alert_id) == (SendState.QUEUED, "wp-en")
    verify_signed(value, MessageKind.HIT_REPORT, bytes(KEY.verify_key))
    report = decode_report(value)
    assert (report.reporter, report.post, report.key_id) == ("COD", "kasindi", REPORTER.key_id)
    assert (report.alert_origin, report.alert_id, report.alert_version) == ("CAF", "wp-en", 1)
    assert (report.action, report.place, report.remarks) == (
        HitAction.ARRESTED,
        "Kasindi crossing",
        "held at the post",
    )
    assert abs(report.hit_at - datetime.now(UTC)) < timedelta(minutes=5)  # empty time: now
    page = client.get(target, headers={"accept-language": "fr"}).text
    assert f"Réponse positive {hit_id} signée et mise en file" in page
    assert "en file (pas encore envoyée)" in page
    assert "Pas encore d&#39;accusé de réception." in page
    assert ("hit_report", f"queued: {hit_id}") in _log(store)
    assert _log(store)[-1] == ("open", "hit")


def test_a_sent_report_and_the_origins_acknowledgement_are_shown(
    client: TestClient, store: Path
) -> None:
    csrf = _login(client)
    _report(client, csrf, action="OBSERVED", remarks="")
    with HitQueue(store) as queue:
        ((hit_id, _, value),) = queue.queued()
        queue.mark_sent(hit_id, datetime.now(UTC))
        ack = ack_of(
            decode_report(value),
            key_id="CAF-2026-01",
            instructions="Do not stop him; tell our liaison officer",
            now=datetime.now(UTC),
            desk_contact="+236 70 00 00 00",
        )
        assert queue.acknowledge(ack)
    page = client.get("/alert/CAF/wp-en").text
    assert "sent 20" in page
    assert "Acknowledged by CAF on" in page
    assert "Do not stop him; tell our liaison officer" in page
    assert "+236 70 00 00 00" in page
    assert "/hit" in client.get("/alert/CAF/vn-1").text  # another alert: not listed there
    assert hit_id not in client.get("/alert/CAF/vn-1").text


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"action": "NOT_ACTED"}, "not_acted_reason: required when the action is NOT_ACTED"),
        ({"action": "SHOT"}, "action: &#39;SHOT&#39; is not one of ARRESTED, SEIZED"),
        ({"action": ""}, "action: &#39;&#39; is not one of"),
        ({"at": "yesterday"}, "at: not an ISO 8601 time"),
        ({"at": "2026-06-01T10:00"}, "at: give a time zone"),
        ({"at": "@FUTURE@"}, "is in the future"),
        ({"version": "7"}, "version: 7 of alert wp-en was never received here"),
        ({"version": "two"}, "version: &#39;two&#39; is not a whole number"),
        ({"place": "  "}, "place: must not be empty"),
        ({"contact": "x" * 301}, "contact: 301 characters, more than the limit of 300"),
        (
            {"remarks": "r" * (MAX_HIT_TEXT_CHARS + 1)},
            "remarks: 4,001 characters, more than the limit of 4,000",
        ),
    ],
)
def test_bad_input_is_named_on_the_page_and_nothing_is_queued(
    client: TestClient, store: Path, fields: dict[str, str], problem: str
) -> None:
    if fields.get("at") == "@FUTURE@":
        fields = {"at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}
    csrf = _login(client)
    answer = _report(client, csrf, **fields)
    assert answer.status_code == 422
    text = answer.text
    assert "Hit report not recorded, nothing was queued:" in text
    assert problem in text
    assert "Traceback" not in text
    assert _queue(store) == []
    kind, outcome = _log(store)[-1]
    assert kind == "hit_report"
    assert outcome.startswith("refused: ")
    for name, value in fields.items():  # what was typed stays in the form (but the version)
        if name not in ("version", "action") and len(value) < 400:
            assert f'value="{value}"' in text or f">{value}</textarea>" in text


def test_the_same_checks_as_post_report_hit_refuse_an_alert_not_held(
    client: TestClient, store: Path
) -> None:
    csrf = _login(client)
    answer = _report(client, csrf, alert="CAF/not-held")
    assert answer.status_code == 404
    assert _queue(store) == []
    assert _log(store)[-1] == ("hit_report", "refused: not_found")


def test_a_form_of_a_megabyte_is_refused_with_its_limit(client: TestClient, store: Path) -> None:
    csrf = _login(client)
    answer = _report(client, csrf, remarks="r" * 1_000_000)
    assert answer.status_code == 413
    assert "limited to 4,000 characters" in answer.text
    assert _queue(store) == []
    assert _log(store)[-1] == ("hit_report", "refused: form too large")


def test_without_the_csrf_token_or_a_session_nothing_is_queued(
    client: TestClient, store: Path
) -> None:
    assert client.post("/alert/CAF/wp-en/hit", data=GOOD).headers["location"] == "/login"
    csrf = _login(client)
    assert client.post("/alert/CAF/wp-en/hit", data=GOOD).status_code == 403
    assert _report(client, csrf[::-1]).status_code == 403
    assert _queue(store) == []


def test_a_page_started_without_the_posts_key_takes_no_report(store: Path) -> None:
    for client in _client(store, None):
        csrf = _login(client)
        card = client.get("/alert/CAF/wp-en").text
        assert "/hit" not in card.split('id="hits"')[1]
        assert "use &#39;post report-hit&#39;" in card
        answer = _report(client, csrf)
        assert answer.status_code == 409
        assert _queue(store) == []
        assert _log(store)[-1] == ("hit_report", "refused: no key")


def test_a_tag_typed_in_the_form_is_shown_escaped(client: TestClient) -> None:
    csrf = _login(client)
    answer = _report(client, csrf, action="NOT_ACTED", place="<script>alert(1)</script>")
    assert "<script>" not in answer.text
    assert re.search(r"&lt;script&gt;", answer.text)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--key", "post.pem"), "need --participant, --post, --key and --trust"),
        (("--key-id", "COD-kasindi-1"), "need --participant, --post, --key and --trust"),
        (
            ("--participant", "cod", "--post", "kasindi", "--key", "k.pem", "--trust", "t.yaml"),
            "--participant: 'cod' is not a participant id",
        ),
    ],
)
def test_post_serve_refuses_half_a_signing_identity(
    store: Path, options: tuple[str, ...], message: str
) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "border_exchange", "post", "serve", "--db", str(store), *options],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert message in refused.stderr
