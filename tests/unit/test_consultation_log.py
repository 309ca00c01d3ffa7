"""The consultation log: chained entries, verification after tampering, the CLI."""

from __future__ import annotations

import io
import itertools
import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from border_exchange.adapters.officer_db import OfficerDB, officers_path
from border_exchange.cli.main import main
from border_exchange.domain.consultation import GENESIS, Entry, Search, chain, verify
from tests.post_site import QUICK_HASHER, fill_store


def _search(number: int) -> Search:
    at = datetime.now(UTC) - timedelta(minutes=10 - number)
    return Search(
        at, "amina", "web", "name", f"query {number}", None, (f"CAF/wp-{number} v1",), "hit"
    )


def _entries(count: int) -> list[Entry]:
    entries: list[Entry] = []
    for number in range(count):
        entries.append(chain(entries[-1] if entries else None, _search(number)))
    return entries


def test_entries_are_chained_and_an_intact_chain_verifies() -> None:
    entries = _entries(4)
    assert entries[0].prev == GENESIS
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))
    assert verify(entries) == []


def test_an_edited_entry_is_named() -> None:
    entries = _entries(4)
    entries[1] = replace(entries[1], search=replace(entries[1].search, query="someone else"))
    assert verify(entries) == ["entry 2: content altered (hash mismatch)"]


def test_a_removed_or_reordered_entry_breaks_the_chain() -> None:
    entries = _entries(4)
    removed = verify(entries[:1] + entries[2:])
    assert "entry 3: expected number 2 (entries missing)" in removed
    assert "entry 3: does not follow the entry before it" in removed
    swapped = verify([entries[0], entries[2], entries[1], entries[3]])
    assert swapped


def test_the_stored_log_verifies_until_someone_edits_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = fill_store(tmp_path / "post.db")
    with OfficerDB(officers_path(store), hasher=QUICK_HASHER) as officers:
        for number in range(3):
            officers.log(_search(number))
    assert main(["post", "log", "verify", "--db", str(store)]) == 0
    assert "consultation log intact: 3 entries" in capsys.readouterr().out
    with sqlite3.connect(officers_path(store)) as db:
        db.execute("UPDATE consultations SET hits = '[]' WHERE seq = 2")
    assert main(["post", "log", "verify", "--db", str(store)]) == 1
    out = capsys.readouterr().out
    assert "entry 2: content altered (hash mismatch)" in out
    assert "consultation log ALTERED" in out


def test_cli_checks_are_logged_and_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = fill_store(tmp_path / "post.db")
    check = ["post", "check", "--db", str(store)]
    assert main([*check, "--name", "Mohamed", "--officer", "desk-2"]) == 1
    assert main([*check, "--name", "Wani Ladu Peter", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "Why it matched" in out
    assert "order swapped" in out
    export = tmp_path / "log.jsonl"
    assert main(["post", "log", "export", "--db", str(store), "--out", str(export)]) == 0
    records = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert [(r["officer"], r["outcome"], r["hits"]) for r in records] == [
        ("desk-2", "no_hit", []),
        (records[1]["officer"], "hit", ["CAF/wp-en v1"]),
    ]
    assert records[1]["officer"].startswith("cli:")
    assert records[1]["prev"] == records[0]["hash"]


def test_accounts_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = fill_store(tmp_path / "post.db")
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    assert main(["post", "user", "add", "--db", str(store), "musa", "--role", "admin",
                 "--password-stdin"]) == 0  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["post", "user", "add", "--db", str(store), "deng", "--password-stdin"]) == 1
    assert main(["post", "user", "disable", "--db", str(store), "musa"]) == 0
    assert main(["post", "user", "list", "--db", str(store)]) == 0
    out = capsys.readouterr()
    assert "musa\tadmin\tdisabled" in out.out
    assert "at least 10 characters" in out.err
