"""The post's web page: sessions, CSRF, lock-out, languages, bad input, a damaged store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from border_exchange.adapters.officer_db import MAX_FAILURES, OfficerDB, officers_path
from border_exchange.adapters.post_store import PostStore
from border_exchange.web.app import PostSite, create_app
from tests.post_site import OFFICER, PASSWORD, QUICK_HASHER, add_officers, fill_store
from tests.unit.test_post_store import FEED


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = fill_store(tmp_path / "post.db")
    add_officers(path)
    return path


@pytest.fixture
def client(store: Path) -> Iterator[TestClient]:
    site = PostSite(store, officers_path(store), hasher=QUICK_HASHER)
    with TestClient(create_app(site), follow_redirects=False) as test_client:
        yield test_client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _login(client: TestClient, password: str = PASSWORD, lang: str = "en") -> str:
    page = client.get("/login", headers={"accept-language": lang})
    answer = client.post(
        "/login",
        data={"csrf": _csrf(page.text), "officer": OFFICER, "password": password},
        headers={"accept-language": lang},
    )
    assert answer.status_code == 303, answer.text
    home = client.get("/", headers={"accept-language": lang})
    return _csrf(home.text)


def _search(
    client: TestClient, csrf: str, query: str, kind: str = "name", dob: str = "", lang: str = "en"
) -> tuple[int, str]:
    answer = client.post(
        "/search",
        data={"csrf": csrf, "kind": kind, "q": query, "dob": dob},
        headers={"accept-language": lang},
    )
    return answer.status_code, answer.text


@pytest.mark.parametrize("path", ["/", "/status", "/alert/CAF/wp-en"])
def test_a_page_without_a_session_redirects_to_login(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(
    client: TestClient, store: Path
) -> None:
    page = client.get("/login", headers={"accept-language": "fr"})
    answer = client.post(
        "/login",
        data={"csrf": _csrf(page.text), "officer": OFFICER, "password": "not-the-password"},
        headers={"accept-language": "fr"},
    )
    assert answer.status_code == 401
    assert "Identifiant ou mot de passe faux" in answer.text
    assert "bx_session" not in answer.cookies
    for _ in range(MAX_FAILURES - 1):
        page = client.get("/login")
        client.post(
            "/login", data={"csrf": _csrf(page.text), "officer": OFFICER, "password": "wrong"}
        )
    page = client.get("/login")
    locked = client.post(
        "/login", data={"csrf": _csrf(page.text), "officer": OFFICER, "password": PASSWORD}
    )
    assert locked.status_code == 401, "the right password does not open a locked account"
    with OfficerDB(officers_path(store), hasher=QUICK_HASHER) as officers:
        (amina,) = [o for o in officers.officers() if o.name == OFFICER]
    assert amina.locked_until is not None


def test_a_request_without_the_csrf_token_is_refused(client: TestClient) -> None:
    csrf = _login(client)
    answer = client.post("/search", data={"kind": "name", "q": "ngakola"})
    assert answer.status_code == 403
    assert "Form expired or invalid" in answer.text
    forged = client.post("/search", data={"csrf": csrf[::-1], "kind": "name", "q": "ngakola"})
    assert forged.status_code == 403
    login_page = client.get("/login")
    no_token = client.post("/login", data={"officer": OFFICER, "password": PASSWORD})
    assert no_token.status_code == 403
    assert login_page.status_code == 200


def test_search_in_french_ranks_hits_and_says_why(client: TestClient) -> None:
    csrf = _login(client, lang="fr")
    code, page = _search(client, csrf, "Jean Baptiste Ngakloa", lang="fr")  # typo, order swapped
    assert code == 200
    assert "SIGNALEMENT TROUVÉ" in page
    assert "/alert/CAF/wp-fr" in page
    assert "une lettre de différence" in page
    assert "ordre des noms inversé" in page


def test_search_in_english_across_scripts_and_the_language_switch(client: TestClient) -> None:
    csrf = _login(client, lang="fr")
    code, page = _search(client, csrf, "بيتر لادو")
    assert code == 200
    assert "/alert/CAF/wp-en" in page
    switched = client.get("/?lang=en", headers={"accept-language": "fr"})
    assert "Search by" in switched.text
    code, page = _search(client, csrf, "Peter Ladu", lang="fr")  # the cookie now wins
    assert "HIT" in page
    assert "Why it matched" in page


@pytest.mark.parametrize(
    ("query", "kind", "dob", "message"),
    [
        ("", "name", "", "Enter a name, a plate or a number."),
        ("   -- '' ", "name", "", "Enter a name, a plate or a number."),
        ("x" * 10_000, "name", "", "Query too long"),
        ("Ngakola", "name", "17/04/1986", "Invalid date of birth"),
        ("Ngakola", "name", "1986-02-30", "Invalid date of birth"),
        ("BG 4512 A", "plate", "1986-04-17", "A date of birth narrows a name search only"),
        ("Ngakola", "passport-photo", "", "Unknown kind of search"),
        ("Nga\x00kola", "name", "", "unprintable characters"),
    ],
)
def test_bad_input_gets_a_clear_message_never_a_500(
    client: TestClient, query: str, kind: str, dob: str, message: str
) -> None:
    csrf = _login(client)
    code, page = _search(client, csrf, query, kind, dob)
    assert code == 422
    assert message in page
    assert "Traceback" not in page


@pytest.mark.parametrize("query", ["山田太郎", "Ἀλέξανδρος", "Иван Петров", "😀", "<script>"])
def test_a_query_in_any_script_is_answered(client: TestClient, query: str) -> None:
    csrf = _login(client)
    code, page = _search(client, csrf, query)
    assert code in (200, 422)
    assert "<script>" not in page.split("</form>")[-1]  # shown escaped, never as markup


def test_the_alert_card_shows_the_photo_only_when_received(client: TestClient) -> None:
    _login(client)
    withheld = client.get("/alert/CAF/wp-fr")
    assert withheld.status_code == 200
    assert "Photo withheld under the agreement." in withheld.text
    assert "<img" not in withheld.text
    assert "Sections withheld" in withheld.text
    assert "B / 2" in withheld.text  # grading from the signed header
    shown = client.get("/alert/CAF/wp-en")
    assert 'id="photo" src="data:image/jpeg;base64,' in shown.text
    vehicle = client.get("/alert/CAF/vn-1")
    assert "This alert has no photo." in vehicle.text
    missing = client.get("/alert/CAF/nope")
    assert missing.status_code == 404
    assert "Alert not found" in missing.text


def test_the_status_page_shows_each_feed_and_the_link(client: TestClient, store: Path) -> None:
    _login(client)
    with PostStore.open(store) as feeds:  # as ``post run`` does after each fetch
        feeds.record_sync({(FEED, 0): 3})
    page = client.get("/status", headers={"accept-language": "fr"}).text
    assert "bx.COD.from.CAF/0" in page
    assert "Liaison" in page
    assert "établie" in page  # synced just now
    assert "100 %" in page


def test_every_search_and_every_alert_opened_is_logged(client: TestClient, store: Path) -> None:
    csrf = _login(client)
    _search(client, csrf, "ngakola")
    _search(client, csrf, "")
    client.get("/alert/CAF/wp-fr")
    with OfficerDB(officers_path(store), hasher=QUICK_HASHER) as officers:
        entries = officers.entries()
    assert [(e.search.officer, e.search.kind, e.search.outcome) for e in entries] == [
        (OFFICER, "name", "hit"),
        (OFFICER, "name", "refused: query_empty"),
        (OFFICER, "open", "hit"),
    ]
    assert entries[0].search.hits == ("CAF/wp-fr v1",)


def test_a_damaged_store_is_shown_and_logged(client: TestClient, store: Path) -> None:
    csrf = _login(client)
    client.app.state.site.forget_store()  # type: ignore[attr-defined]  # Starlette's app state
    store.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    code, page = _search(client, csrf, "ngakola")
    assert code == 503
    assert "unreadable or damaged" in page
    status = client.get("/status")
    assert status.status_code == 503
    with OfficerDB(officers_path(store), hasher=QUICK_HASHER) as officers:
        last = officers.entries()[-1]
    assert last.search.outcome.startswith("store_error")


def test_logout_ends_the_session(client: TestClient) -> None:
    csrf = _login(client)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/").status_code == 303


def test_the_status_page_says_the_link_is_down_after_a_silence(
    client: TestClient, store: Path
) -> None:
    _login(client)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with PostStore.open(store, clock=lambda: an_hour_ago) as feeds:
        feeds.record_sync({(FEED, 0): 3})
    page = client.get("/status", headers={"accept-language": "fr"}).text
    assert "coupée" in page
