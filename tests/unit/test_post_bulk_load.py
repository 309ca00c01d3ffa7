"""The post store's bulk load: the same lookups as record by record, and only the last keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from border_exchange.adapters import post_store
from border_exchange.adapters.post_store import Accepted, PostStore
from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.at_rest import RECORD, Place, open_local
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.samples import sample_alert_data
from border_exchange.services.post import outcome_of
from tests.unit.test_post_store import FEED, NOW, accepted, cancelled, sealed, trust

FAMILIES = ["MBALA", "NGAKOLA", "YUSUF", "KABILA", "OKELLO", "DJOTODIA"]


def _wanted(family: str, document: str) -> AlertInput:
    data = sample_alert_data(AlertType.WANTED_PERSON, origin="CAF", at=NOW)
    data["sections"]["identity"]["family_names"] = [family]
    data["sections"]["identity"]["aliases"] = [f"{family.title()} le Grand"]
    data["sections"]["documents"]["documents"][0]["number"] = document
    return parse_alert(data)


def _vehicle(plate: str) -> AlertInput:
    data = sample_alert_data(AlertType.VEHICLE_NOTICE, origin="CAF", at=NOW)
    data["sections"]["vehicle"]["plate"] = plate
    return parse_alert(data)


def _batch() -> list[Accepted]:
    batch = [
        accepted(sealed(_wanted(family, f"DOC-{n}"), f"wp-{n}"), n)
        for n, family in enumerate(FAMILIES)
    ]
    offset = len(batch)
    batch += [accepted(sealed(_vehicle(f"BG {n} A"), f"vn-{n}"), offset + n) for n in range(4)]
    return batch


def _lookups(store: PostStore) -> list[object]:
    found: list[object] = []
    for family in FAMILIES:
        found.append([(h.alert.alert_id, h.name, h.match.score) for h in store.match_name(family)])
        found.append([(h.alert.alert_id, h.name) for h in store.match_name(f"Desire {family}")])
    for n in range(len(FAMILIES)):
        found.append([a.alert_id for a in store.find_document(f"doc {n}")])
    for n in range(4):
        found.append([a.alert_id for a in store.find_plate(f"bg-{n}-a")])
    return found


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        return {row[0] for row in rows}


def test_a_bulk_load_finds_what_applying_record_by_record_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one = PostStore.open(tmp_path / "one.db")
    for outcome in _batch():
        one_by_one.apply([outcome])
    expected = _lookups(one_by_one)
    assert all(expected), expected  # every lookup finds something: the comparison can fail
    monkeypatch.setattr(post_store, "BULK_FROM", 2)
    bulk = PostStore.open(tmp_path / "bulk.db")
    bulk.apply(_batch())
    assert _lookups(bulk) == expected
    assert _indexes(tmp_path / "bulk.db") == _indexes(tmp_path / "one.db")
    assert set(post_store._SEARCH_INDEXES) <= _indexes(tmp_path / "bulk.db")


def test_an_empty_store_loaded_with_deferred_indexes_finds_the_same(tmp_path: Path) -> None:
    one_by_one = PostStore.open(tmp_path / "one.db")
    for outcome in _batch():
        one_by_one.apply([outcome])
    expected = _lookups(one_by_one)
    store = PostStore.open(tmp_path / "post.db")
    assert store.defer_indexes()
    assert not set(post_store._SEARCH_INDEXES) & _indexes(tmp_path / "post.db")
    batch = _batch()
    # two partitions' bootstraps, neither one builds the indexes
    store.bootstrap("CAF", (FEED, 0), batch[:5], None, 5)
    store.bootstrap("CAF", (FEED, 1), batch[5:], None, 5)
    assert not set(post_store._SEARCH_INDEXES) & _indexes(tmp_path / "post.db")
    assert _lookups(store) == expected  # correct meanwhile, only slower
    store.build_indexes()
    assert _indexes(tmp_path / "post.db") == _indexes(tmp_path / "one.db")
    assert _lookups(store) == expected
    assert not store.defer_indexes()  # a store that holds alerts keeps its indexes
    assert set(post_store._SEARCH_INDEXES) <= _indexes(tmp_path / "post.db")


def test_indexes_deferred_by_a_process_that_ended_are_built_at_the_next_open(
    tmp_path: Path,
) -> None:
    store = PostStore.open(tmp_path / "post.db")
    assert store.defer_indexes()
    store.bootstrap("CAF", (FEED, 0), _batch(), None, 10)
    store.close()  # ended before build_indexes
    assert not set(post_store._SEARCH_INDEXES) & _indexes(tmp_path / "post.db")
    PostStore.open(tmp_path / "post.db").close()
    assert set(post_store._SEARCH_INDEXES) <= _indexes(tmp_path / "post.db")


@pytest.mark.parametrize("bulk_from", [2, 10_000], ids=["bulk", "record-by-record"])
def test_only_the_last_versions_search_keys_remain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk_from: int
) -> None:
    monkeypatch.setattr(post_store, "BULK_FROM", bulk_from)
    store = PostStore.open(tmp_path / "post.db")
    store.apply([accepted(sealed(_vehicle("OLD 1 A"), "vn-old"), 0)])
    first = sealed(_vehicle("FIRST 1 A"), "vn-twice")
    store.apply(
        [
            accepted(sealed(_vehicle("NEW 1 A"), "vn-old", version=2), 1),
            accepted(first, 2),
            accepted(sealed(_vehicle("SECOND 1 A"), "vn-twice", version=2), 3),
            accepted(sealed(_vehicle("GONE 1 A"), "vn-gone"), 4),
            accepted(cancelled(sealed(_vehicle("GONE 1 A"), "vn-gone"), 2), 5),
        ]
    )
    assert store.find_plate("OLD 1 A") == []
    assert [a.alert_id for a in store.find_plate("NEW 1 A")] == ["vn-old"]
    assert store.find_plate("FIRST 1 A") == []
    assert [(a.alert_id, a.version) for a in store.find_plate("SECOND 1 A")] == [("vn-twice", 2)]
    assert store.find_plate("GONE 1 A") == []
    with sqlite3.connect(tmp_path / "post.db") as db:
        assert db.execute("SELECT COUNT(*) FROM plates").fetchone()[0] == 2


def test_the_store_keeps_the_records_own_bytes(tmp_path: Path) -> None:
    envelope = sealed(_wanted("MBALA", "DOC-1"), "wp-1")
    value = encode_envelope(envelope)
    record = ConsumerRecord(FEED, 0, 7, 0, 0, b"wp-1", value, None, 4, len(value), ())
    outcome = outcome_of(record, trust(), "COD")
    assert isinstance(outcome, Accepted)
    assert outcome.raw is value
    store = PostStore.open(tmp_path / "post.db")
    store.apply([outcome])
    with sqlite3.connect(tmp_path / "post.db") as db:
        stored, ref = db.execute("SELECT envelope, key_ref FROM alerts").fetchone()
    with sqlite3.connect(tmp_path / "post.db.keys") as db:
        (key,) = db.execute(
            "SELECT key FROM section_keys WHERE ref = ? AND section = ?", (ref, RECORD)
        ).fetchone()
    assert value not in stored  # kept encrypted, under a key of its own in the key store
    assert open_local(key, Place("CAF", "wp-1", 1, RECORD), stored) == value
    assert store.header_of("CAF", "wp-1") == envelope.header
