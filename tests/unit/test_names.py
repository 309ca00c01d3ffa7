"""The name matcher: spellings, transliterations, scripts, order, one typo; the labelled set."""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from border_exchange.adapters import name_index
from border_exchange.domain.lookup import PersonName
from border_exchange.domain.names import (
    THRESHOLD,
    Kind,
    best_match,
    index_keys,
    match,
    name_form,
    query_keys,
)

PAIRS = Path(__file__).parent.parent / "data" / "name_pairs.csv"


@dataclass(frozen=True)
class Labelled:
    query: str
    name: str
    same: bool
    group: str


def labelled() -> list[Labelled]:
    with PAIRS.open(encoding="utf-8", newline="") as handle:
        return [
            Labelled(row["query"], row["name"], row["match"] == "1", row["group"])
            for row in csv.DictReader(handle)
        ]


def test_the_labelled_set_is_large_and_covers_every_group() -> None:
    pairs = labelled()
    assert len(pairs) >= 200
    assert sum(p.same for p in pairs) >= 100
    assert sum(not p.same for p in pairs) >= 80
    groups = {p.group for p in pairs}
    assert {"arabic-latin", "arabic-script", "congolese", "central-african"} <= groups
    assert {"south-sudanese", "french-english", "order", "typo"} <= groups


def test_recall_and_precision_on_the_labelled_set_reach_the_goal() -> None:
    pairs = labelled()
    found = [match(name_form(p.query), name_form(p.name)) is not None for p in pairs]
    true_pos = sum(f and p.same for f, p in zip(found, pairs, strict=True))
    false_pos = sum(f and not p.same for f, p in zip(found, pairs, strict=True))
    false_neg = sum(not f and p.same for f, p in zip(found, pairs, strict=True))
    recall = true_pos / (true_pos + false_neg)
    precision = true_pos / (true_pos + false_pos)
    assert recall >= 0.95, f"recall {recall:.3f}"
    assert precision >= 0.9, f"precision {precision:.3f}"


@pytest.mark.parametrize(
    ("query", "name", "kind"),
    [
        ("Mohamed", "Mohammed", Kind.SPELLING),
        ("Mohamed", "Muhammad", Kind.VARIANT),
        ("Mbala", "M'Bala", Kind.EXACT),
        ("Youssouf", "Yusuf", Kind.SPELLING),
        ("Ngakola", "Ngakloa", Kind.TYPO),
        ("محمد", "Mohamed", Kind.SCRIPT),
        ("Mohamed", "محمد", Kind.SCRIPT),
        ("Jean Baptiste", "Jeanbaptiste", Kind.JOINED),
    ],
)
def test_spellings_scripts_typos_and_joins_match_and_say_why(
    query: str, name: str, kind: Kind
) -> None:
    found = match(name_form(query), name_form(name))
    assert found is not None
    assert found.score >= THRESHOLD
    assert [p.kind for p in found.pairs] == [kind]


def test_swapped_order_matches_and_is_reported() -> None:
    found = match(name_form("Ngakola Jean-Baptiste"), name_form("Jean-Baptiste NGAKOLA"))
    assert found is not None
    assert found.order_swapped
    plain = match(name_form("Jean Ngakola"), name_form("Jean Ngakola"))
    assert plain is not None
    assert not plain.order_swapped


def test_every_query_token_needs_its_own_token_in_the_name() -> None:
    assert match(name_form("Ngakola"), name_form("NGAKOLA Jean-Baptiste Désiré")) is not None
    assert match(name_form("Ngakola Pierre"), name_form("NGAKOLA Jean-Baptiste")) is None
    assert match(name_form("Jean Jean"), name_form("Jean Ngakola")) is None
    assert match(name_form(""), name_form("Jean Ngakola")) is None


def test_different_names_do_not_match() -> None:
    for query, name in [("Mohamed", "Ahmed"), ("Kabila", "Kalala"), ("Pierre", "Peter")]:
        assert match(name_form(query), name_form(name)) is None, (query, name)


def test_an_exact_name_ranks_above_a_misspelt_one() -> None:
    names = [name_form("Ngakloa Jean"), name_form("Ngakola Jean")]
    found = best_match(name_form("Jean Ngakola"), names)
    assert found is not None
    assert found[0] == 1


def test_a_misspelt_query_shares_an_index_key_with_the_name() -> None:
    for query, name in [("Nkakola", "Ngakola"), ("Mukebdi", "Mukendi"), ("محمد", "Muhammad")]:
        wanted = frozenset().union(*(query_keys(t) for t in name_form(query).tokens))
        assert wanted & index_keys(name_form(name)), (query, name)


def test_the_store_index_finds_what_the_matcher_matches_on_the_labelled_set() -> None:
    pairs = labelled()
    db = sqlite3.connect(":memory:")
    db.executescript(name_index.SCHEMA)
    for number, pair in enumerate(pairs):
        name_index.index(db, number, [PersonName(0, pair.name, None)])
    found = [
        any(c.alert == number for c in name_index.search(db, name_form(pair.query)))
        for number, pair in enumerate(pairs)
    ]
    true_pos = sum(f and p.same for f, p in zip(found, pairs, strict=True))
    false_pos = sum(f and not p.same for f, p in zip(found, pairs, strict=True))
    recall = true_pos / sum(p.same for p in pairs)
    assert recall >= 0.95, f"recall through the store {recall:.3f}"
    assert true_pos / (true_pos + false_pos) >= 0.9
