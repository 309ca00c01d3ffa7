"""The post store's name index: candidate generation in SQLite, scoring by ``domain.names``.

Two tables, both keyed by the alert's row id so that every path that drops an alert's
search keys (update, cancel, expiry, erasure: ``PostStore._unindex``) drops them too:

* ``name_forms``: one row per name of a flagged person, with the name as written, its
  comparable form (JSON) and the date of birth;
* ``name_keys``: the keys of every token of that name (``names.token_keys``), with the
  token's number, so that two query tokens are looked for in two different tokens.

A search fetches the names that share a key with every query token and scores only
those: a handful of rows instead of every name in force.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from border_exchange.domain import fastpath
from border_exchange.domain.lookup import PersonName, dob_agrees
from border_exchange.domain.names import (
    NameForm,
    NameMatch,
    Token,
    join,
    match,
    query_keys,
    token_keys,
)

TABLES: Final = ("name_forms", "name_keys")
"""The tables holding an alert's name index (rows keyed by ``alert``)."""

INDEXES: Final = {
    "name_keys_key": "name_keys (key, alert, name_no, token_no)",
    "name_keys_name": "name_keys (alert, name_no, key, token_no)",
}
"""The indexes of ``name_keys`` (name: table and columns); a bulk load builds them after."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS name_forms (
    alert INTEGER NOT NULL, name_no INTEGER NOT NULL, written TEXT NOT NULL,
    form TEXT NOT NULL, dob TEXT, PRIMARY KEY (alert, name_no)
);
CREATE TABLE IF NOT EXISTS name_keys (key TEXT NOT NULL, alert INTEGER NOT NULL,
    name_no INTEGER NOT NULL, token_no INTEGER NOT NULL);
""" + "".join(f"CREATE INDEX IF NOT EXISTS {name} ON {on};\n" for name, on in INDEXES.items())


@dataclass(frozen=True, slots=True)
class NameCandidate:
    """A stored name the query matched: which alert, the name as written, how it matched."""

    alert: int
    written: str
    match: NameMatch


def _dump(form: NameForm) -> str:
    return json.dumps([[t.text, t.key, t.skeleton, t.latin] for t in form.tokens])


def _load(text: str) -> NameForm:
    return NameForm(tuple(Token(a, b, c, bool(d)) for a, b, c, d in json.loads(text)))


FormRow = tuple[int, int, str, str, str | None]
"""A ``name_forms`` row: alert, name number, as written, form (JSON), date of birth."""
KeyRow = tuple[str, int, int, int]
"""A ``name_keys`` row: key, alert, name number, token number."""


def rows(alert: int, names: Sequence[PersonName]) -> tuple[list[FormRow], list[KeyRow]]:
    """The index rows of the ``names`` of stored alert ``alert``."""
    forms: list[FormRow] = []
    keys: list[KeyRow] = []
    for number, name in enumerate(names):
        form = name.form
        born = None if name.date_of_birth is None else name.date_of_birth.isoformat()
        forms.append((alert, number, name.written, _dump(form), born))
        compiled = fastpath.name_key_rows(form.tokens, alert, number)
        keys.extend(key_rows(form, alert, number) if compiled is None else compiled)
    return forms, keys


Columns = tuple[tuple[object, ...], ...]
"""Rows turned into columns (``zip(*rows)``): what crosses between processes cheaply."""


def unplaced(names: Sequence[PersonName]) -> tuple[Columns, Columns]:
    """``rows`` of ``names`` made before their alert has a row id, as columns (the alert
    column left out of use); ``placed`` makes them the rows of an alert."""
    forms, keys = rows(0, names)
    return tuple(zip(*forms, strict=True)), tuple(zip(*keys, strict=True))


def placed(alert: int, made: tuple[Columns, Columns]) -> tuple[Iterable[FormRow], Iterable[KeyRow]]:
    """The rows ``unplaced`` made, as the rows of alert ``alert`` (iterated in C)."""
    forms, keys = made
    placed_forms = zip(itertools.repeat(alert), *forms[1:], strict=False) if forms else ()
    placed_keys = zip(keys[0], itertools.repeat(alert), *keys[2:], strict=False) if keys else ()
    return placed_forms, placed_keys


def key_rows(form: NameForm, alert: int, number: int) -> list[KeyRow]:
    """The ``name_keys`` rows of name ``number`` of alert ``alert``: each token's keys, sorted.

    The reference of the compiled ``fastpath.name_key_rows``, which answers the same.
    """
    return [
        (key, alert, number, token) for token, found in token_keys(form) for key in sorted(found)
    ]


def insert(db: sqlite3.Connection, forms: Sequence[FormRow], keys: Sequence[KeyRow]) -> None:
    """Insert index rows (of any number of alerts) inside the caller's transaction."""
    db.executemany("INSERT INTO name_forms VALUES (?, ?, ?, ?, ?)", forms)
    db.executemany("INSERT INTO name_keys VALUES (?, ?, ?, ?)", keys)


def index(db: sqlite3.Connection, alert: int, names: Sequence[PersonName]) -> None:
    """Index the ``names`` of stored alert ``alert`` (inside the caller's transaction)."""
    insert(db, *rows(alert, names))


def unindex(db: sqlite3.Connection, alert: int) -> None:
    """Drop the name index of alert ``alert``."""
    for table in TABLES:
        db.execute(f"DELETE FROM {table} WHERE alert = ?", (alert,))


def _marks(keys: Collection[str]) -> str:
    return ", ".join("?" for _ in keys)


def _postings(db: sqlite3.Connection, keys: Sequence[str]) -> int:
    row = db.execute(
        f"SELECT COUNT(*) FROM name_keys WHERE key IN ({_marks(keys)})", keys
    ).fetchone()
    return int(row[0])


def search(db: sqlite3.Connection, query: NameForm, dob: date | None = None) -> list[NameCandidate]:
    """The stored names ``query`` matches, best first, one (the best) per alert.

    Candidates are the names sharing a key with every query token (each query token must
    pair with a close token of the name, and close tokens share a key), found from the
    rarest token's keys; and the names holding two adjacent query tokens read as one.
    """
    if not query.tokens:
        return []
    per_token = sorted(
        (sorted(query_keys(token)) for token in query.tokens),
        key=lambda keys: _postings(db, keys),
    )
    rarest, *others = per_token
    sql = f"SELECT k.alert, k.name_no FROM name_keys k WHERE k.key IN ({_marks(rarest)})"
    params: list[str] = list(rarest)
    for keys in others:
        sql += (
            " AND EXISTS (SELECT 1 FROM name_keys m WHERE m.alert = k.alert "
            f"AND m.name_no = k.name_no AND m.key IN ({_marks(keys)}) "
            "AND m.token_no != k.token_no)"
        )
        params.extend(keys)
    for first, second in itertools.pairwise(query.tokens):
        joined = sorted(query_keys(join(first, second)))
        sql += f" UNION SELECT alert, name_no FROM name_keys WHERE key IN ({_marks(joined)})"
        params.extend(joined)
    rows = db.execute(
        f"WITH found (alert, name_no) AS ({sql}) "
        "SELECT f.alert, f.written, f.form, f.dob FROM found "
        "CROSS JOIN name_forms f ON f.alert = found.alert AND f.name_no = found.name_no",
        params,
    )
    best: dict[int, NameCandidate] = {}
    for alert, written, form, born in rows:
        if not dob_agrees(dob, None if born is None else date.fromisoformat(born)):
            continue
        found = match(query, _load(form))
        if found is not None and (alert not in best or found.score > best[alert].match.score):
            best[alert] = NameCandidate(alert, written, found)
    return sorted(best.values(), key=lambda c: -c.match.score)
