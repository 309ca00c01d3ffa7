"""One search at a border post, from the web page or the command line, always logged.

The query is checked (``lookup.parse_query``), run against the post store, and recorded
in the consultation log with who asked, the query, and every alert shown, whatever the
outcome: a refused query and an unreadable store are logged too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from border_exchange.adapters.officer_db import OfficerDB
from border_exchange.adapters.post_store import PostStore, StoredAlert
from border_exchange.domain.consultation import Search
from border_exchange.domain.labels import Lang, label
from border_exchange.domain.lookup import (
    Query,
    QueryProblem,
    SearchKind,
    normalise_document,
    normalise_plate,
    normalise_vin,
    parse_query,
)
from border_exchange.domain.names import NameMatch
from border_exchange.errors import StoreError


@dataclass(frozen=True, slots=True)
class Found:
    """One alert found, with why: the name that matched and how, or the key that did."""

    alert: StoredAlert
    score: float
    matched: str
    name_match: NameMatch | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a search gave: the query (or the problem with it) and what it found."""

    query: Query | None
    problem: QueryProblem | None
    found: tuple[Found, ...]


def _run(store: PostStore, query: Query) -> list[Found]:
    if query.kind is SearchKind.NAME:
        return [
            Found(hit.alert, hit.match.score, hit.name, hit.match)
            for hit in store.match_name(query.text, query.dob)
        ]
    if query.kind is SearchKind.PLATE:
        key, alerts = normalise_plate(query.text), store.find_plate(query.text)
    elif query.kind is SearchKind.VIN:
        key, alerts = normalise_vin(query.text), store.find_vin(query.text)
    else:
        key, alerts = normalise_document(query.text), store.find_document(query.text)
    return [Found(alert, 1.0, key) for alert in alerts]


def hit_reference(alert: StoredAlert) -> str:
    """How the log names an alert shown: origin, id and version."""
    return f"{alert.origin}/{alert.alert_id} v{alert.version}"


def search(
    store: PostStore | None,
    log: OfficerDB,
    *,
    officer: str,
    channel: str,
    kind: str,
    text: str,
    dob: str | None = None,
) -> Outcome:
    """Check and run one query, and log it; ``StoreError`` (logged) when the store fails.

    ``store`` is None when it could not even be opened: the search is logged as failed.
    """
    at = datetime.now(UTC)
    parsed = parse_query(kind, text, dob)
    logged_text = text[:1000]  # a refused, overlong query is logged by its beginning

    def record(outcome: str, hits: Sequence[Found] = ()) -> None:
        log.log(
            Search(at, officer, channel, kind, logged_text, dob or None,
                   tuple(hit_reference(f.alert) for f in hits), outcome)
        )  # fmt: skip

    if isinstance(parsed, QueryProblem):
        record(f"refused: {parsed.value}")
        return Outcome(None, parsed, ())
    try:
        if store is None:
            raise StoreError("the post store cannot be opened")
        found = _run(store, parsed)
    except (StoreError, sqlite3.DatabaseError) as exc:
        record(f"store_error: {exc}")
        raise StoreError(f"the post store cannot be searched: {exc}") from exc
    record("hit" if found else "no_hit", found)
    return Outcome(parsed, None, tuple(found))


def explain(found: Found, kind: SearchKind, lang: Lang) -> list[str]:
    """Why ``found`` matched, in ``lang``: each name token's pairing, or the key."""
    if found.name_match is None:
        return [label(lang, "key_match", kind=label(lang, kind.value), value=found.matched)]
    lines = [f"{label(lang, 'matched_name')}: {found.matched}"]
    for pair in found.name_match.pairs:
        how = label(lang, f"match_{pair.kind.value}")
        lines.append(f"{pair.query} ~ {pair.matched}: {how} ({pair.similarity:.2f})")
    if found.name_match.order_swapped:
        lines.append(label(lang, "order_swapped"))
    return lines
