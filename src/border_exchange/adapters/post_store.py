"""A border post's local copy of its feeds: SQLite, searchable offline.

Each batch of consumed records is applied in one SQLite transaction together with the
next offset of every partition it came from, so after a crash or a power cut the
store and its offsets agree: the offsets in SQLite are the truth the post restarts
from. A cancel or an older version never resurrects an alert: the row stays as a
tombstone with its version. Lookups exclude alerts whose expiry has passed.

At rest: every section the store keeps, and the record's own bytes, is encrypted under
a fresh key of its own (``domain.at_rest``); the keys live in the key store, a file of
their own (``adapters.post_keys``). Reads open the content with them.

Erasure: a cancelled or expired alert keeps no content (sections, envelope, search
keys go at once, and its keys are destroyed, so a copy of the store taken before, a
backup, cannot be read any more); after the grace period its row goes too. An update
destroys the keys of the version it replaces. ``secure_delete`` is on in both files,
so freed pages and cells are overwritten with zeros, and each erasure ends with a
checkpoint that empties the write-ahead log, which would otherwise still hold the
old pages. A post that bootstraps a feed partition from its state topic
(``bootstrap``) gets every alert in force there and drops what the state no longer
holds; a gap (stored offsets the feed no longer has) is recorded and reported.

Speed: an apply writes the search tables at its end, one statement per table; an apply
of many alerts into a store holding fewer (a bootstrap, mostly) is a bulk load, which
drops the search indexes while it inserts and builds them again before it commits.
The record's own bytes are kept as the envelope, not a re-encoding of it.

The module is long because it is the one place that knows the store's SQL tables: the
applies, the bootstrap, the lookups and the erasure read and write the same tables in
the same transactions.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from border_exchange.adapters import name_index, post_keys, sqlite_tx
from border_exchange.adapters.sqlite_files import SqliteFile, open_durable, stored_time
from border_exchange.domain.at_rest import (
    RECORD,
    NotOpened,
    Place,
    open_local,
    seal_version,
)
from border_exchange.domain.catalog import SECTIONS, AlertType, Operation
from border_exchange.domain.encoding import decode_envelope, encode_envelope
from border_exchange.domain.envelope import Envelope, Header
from border_exchange.domain.lookup import (
    normalise_document,
    normalise_plate,
    normalise_vin,
    search_keys,
)
from border_exchange.domain.names import NameMatch, name_form
from border_exchange.domain.naming import parse_feed_state_topic, parse_feed_topic
from border_exchange.domain.sealed_reading import wrapped_key_ids
from border_exchange.errors import StoreError

SCHEMA_VERSION: Final = 2
"""2: sections and the record encrypted at rest, their keys in the key store (1: in clear)."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    alert_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    operation TEXT NOT NULL,
    state TEXT NOT NULL,
    message_id TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    expires_ts REAL NOT NULL,
    handling_code TEXT NOT NULL,
    priority TEXT NOT NULL,
    action_on_hit TEXT NOT NULL,
    warning_markers TEXT NOT NULL,
    language TEXT,
    cancel_reason TEXT,
    sections_json TEXT NOT NULL,
    withheld_json TEXT NOT NULL,
    envelope BLOB,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    key_ref BLOB,
    UNIQUE (origin, alert_id)
);
CREATE INDEX IF NOT EXISTS alerts_active ON alerts (state, expires_ts);
CREATE TABLE IF NOT EXISTS plates (alert INTEGER NOT NULL, plate TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vins (alert INTEGER NOT NULL, vin TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (alert INTEGER NOT NULL, number TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    end_offset INTEGER,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    expected INTEGER,
    first_available INTEGER NOT NULL,
    healed_from TEXT,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

_SEARCH_INDEXES: Final = {
    "plates_plate": "plates (plate)",
    "plates_alert": "plates (alert)",
    "vins_vin": "vins (vin)",
    "vins_alert": "vins (alert)",
    "documents_number": "documents (number)",
    "documents_alert": "documents (alert)",
    **name_index.INDEXES,
}
"""The indexes of the search tables (name: table and columns), which a bulk load drops
while it inserts and builds again after: a sort per index instead of a B-tree insert
per row."""

BULK_FROM: Final = 2000
"""An apply of at least this many alerts, and at least as many as the store holds, is
a bulk load (a bootstrap from the state topics, mostly): indexes built after."""

CACHE_KIB: Final = 32 * 1024
"""SQLite's page cache for the store (KiB): the search indexes of 100,000 alerts fit."""

_ALERT_COLUMNS: Final = (
    "origin, alert_id, alert_type, version, operation, message_id, issued_at, expires_at, "
    "handling_code, priority, action_on_hit, warning_markers, language, sections_json, "
    "withheld_json, received_at, key_ref"
)


_RECORD_COLUMNS: Final = "envelope, origin, alert_id, version, key_ref"
"""The columns ``PostStore._envelope`` opens the stored record from."""

_STORED_COLUMNS: Final = (
    "origin", "alert_id", "alert_type", "version", "operation", "state", "message_id",
    "issued_at", "expires_at", "expires_ts", "handling_code", "priority", "action_on_hit",
    "warning_markers", "language", "cancel_reason", "sections_json", "withheld_json",
    "envelope", "topic", "partition", "offset", "received_at", "key_ref",
)  # fmt: skip
_QUOTED: Final = [f'"{column}"' for column in _STORED_COLUMNS]
_UPSERT_ALERT: Final = (
    f"INSERT INTO alerts (id, {', '.join(_QUOTED)}) VALUES (?, {', '.join('?' for _ in _QUOTED)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _QUOTED)
)
"""Writes an alert's row under its id: the row it had, or the next free one (a new alert
gets the id SQLite would give it: one more than the highest)."""
_KNOWN_CHUNK: Final = 500
"""Alert ids looked up per statement when an apply reads which of its alerts are stored."""
_KEY_TABLES: Final = ("plates", "vins", "documents")
"""The exact-key search tables (rows keyed by ``alert``)."""


class State(StrEnum):
    """Where a stored alert stands."""

    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A verified feed record with its decoded present sections, to apply."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope
    sections: Mapping[str, Mapping[str, Any]]
    refused: Mapping[str, str] = field(default_factory=dict)
    """Sealed sections present that did not open here, with the reason (kept as withheld)."""
    raw: bytes | None = None
    """The record's own bytes, which the store keeps as the envelope (None: re-encoded)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A feed record refused (undecodable, unverifiable or misrouted), never stored."""

    topic: str
    partition: int
    offset: int
    reason: str


Outcome = Accepted | Rejected


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one batch did to the store."""

    stored: int = 0
    cancelled: int = 0
    stale: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An active alert as the post holds it, content as the origin wrote it."""

    origin: str
    alert_id: str
    alert_type: AlertType
    version: int
    operation: Operation
    message_id: str
    issued_at: datetime
    expires_at: datetime
    handling_code: str
    priority: str
    action_on_hit: str
    warning_markers: tuple[str, ...]
    language: str | None
    sections: Mapping[str, Any]
    withheld: tuple[str, ...]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Sync position of one feed partition."""

    topic: str
    partition: int
    next_offset: int
    end_offset: int | None

    @property
    def lag(self) -> int | None:
        """Records known on the broker at the last sync and not yet stored."""
        return None if self.end_offset is None else max(0, self.end_offset - self.next_offset)


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """The post's sync state: last sync, per-feed positions, counts."""

    last_sync: datetime | None
    feeds: tuple[FeedStatus, ...]
    active: int
    rejected: int
    gaps: tuple[Gap, ...] = ()

    @property
    def lag(self) -> int | None:
        """Total lag over every feed, None when no end offset is known."""
        lags = [feed.lag for feed in self.feeds if feed.lag is not None]
        return sum(lags) if lags else None


@dataclass(frozen=True, slots=True)
class Gap:
    """Feed records the post never read because the feed had deleted them."""

    topic: str
    partition: int
    expected: int | None
    """The next offset the post had stored (None: it had read nothing)."""
    first_available: int
    healed_from: str | None
    """The state topic the post bootstrapped from instead, or None when there was none."""
    at: datetime

    def describe(self) -> str:
        """One line for ``post status``."""
        missed = ""
        if self.expected is not None:
            missed = f"offsets {self.expected}..{self.first_available - 1} "
        healed = f"bootstrapped from {self.healed_from}" if self.healed_from else "NOT healed"
        return f"{self.topic}/{self.partition}: {missed}deleted before read; {healed}"


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A refused record as reported."""

    topic: str
    partition: int
    offset: int
    reason: str
    at: datetime


def _held(db: sqlite3.Connection) -> int:
    """How many alert rows the store holds (a count over an index: asked for big applies only)."""
    return int(db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])


@dataclass
class _Known:
    """The stored alerts an apply touches, as it changes them: (origin, alert id) to
    (row id, version, state, key reference); and the row id the next new alert gets."""

    rows: dict[tuple[str, str], tuple[int, int, str, bytes | None]]
    next_id: int


def _known(db: sqlite3.Connection, records: Sequence[Prepared]) -> _Known:
    """Which alerts of ``records`` the store holds, a statement per few hundred ids."""
    wanted: dict[str, set[str]] = {}
    for record in records:
        wanted.setdefault(record.origin, set()).add(record.alert_id)
    rows: dict[tuple[str, str], tuple[int, int, str, bytes | None]] = {}
    for origin, ids in wanted.items():
        ordered = sorted(ids)
        for start in range(0, len(ordered), _KNOWN_CHUNK):
            chunk = ordered[start : start + _KNOWN_CHUNK]
            found = db.execute(
                "SELECT alert_id, id, version, state, key_ref FROM alerts WHERE origin = ? "
                f"AND alert_id IN ({', '.join('?' for _ in chunk)})",
                (origin, *chunk),
            )
            rows.update(((origin, a), (i, v, st, ref)) for a, i, v, st, ref in found)
    highest = db.execute("SELECT COALESCE(MAX(id), 0) FROM alerts").fetchone()[0]
    return _Known(rows, int(highest) + 1)


def _resume_at(db: sqlite3.Connection, topic: str, partition: int, offset: int) -> None:
    """Store the offset a feed partition resumes at (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
        "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
        (topic, partition, offset),
    )


def _create_indexes(db: sqlite3.Connection) -> None:
    for name, on in _SEARCH_INDEXES.items():
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


def _drop_indexes(db: sqlite3.Connection) -> None:
    for name in _SEARCH_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")


@dataclass
class _SearchRows:
    """The search-table changes of one apply, made together at its end.

    ``unindex`` notes an alert whose earlier search rows go; ``add`` the rows of its
    version stored now (an alert stored twice in one apply keeps those of the last).
    ``write`` deletes first, then inserts every row with one statement per table; in a
    bulk load it drops the indexes for the inserts and builds them again after.
    """

    keys: dict[int, Prepared] = field(default_factory=dict)
    names: dict[int, tuple[Iterable[name_index.FormRow], Iterable[name_index.KeyRow]]] = field(
        default_factory=dict
    )
    gone: set[int] = field(default_factory=set)

    def add(self, alert: int, ready: Prepared) -> None:
        self.keys[alert] = ready
        self.names[alert] = name_index.placed(alert, ready.names)

    def unindex(self, alert: int) -> None:
        self.keys.pop(alert, None)
        self.names.pop(alert, None)
        self.gone.add(alert)

    def write(self, db: sqlite3.Connection, *, bulk: bool) -> None:
        ids = [(alert,) for alert in sorted(self.gone)]
        for table in (*_KEY_TABLES, *name_index.TABLES):
            db.executemany(f"DELETE FROM {table} WHERE alert = ?", ids)
        tables: dict[str, list[tuple[int, str]]] = {t: [] for t in _KEY_TABLES}
        forms: list[name_index.FormRow] = []
        names: list[name_index.KeyRow] = []
        for alert, keys in self.keys.items():
            tables["plates"].extend((alert, p) for p in keys.plates)
            tables["vins"].extend((alert, v) for v in keys.vins)
            tables["documents"].extend((alert, d) for d in keys.documents)
            more_forms, more_names = self.names[alert]
            forms.extend(more_forms)
            names.extend(more_names)
        if bulk:
            _drop_indexes(db)
        for table, rows in tables.items():
            db.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
        name_index.insert(db, forms, names)
        if bulk:
            _create_indexes(db)
        self.keys.clear()
        self.names.clear()
        self.gone.clear()


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot store {type(value).__name__}")


_section_json: Final = json.JSONEncoder(default=_json_default, ensure_ascii=False).encode
"""``json.dumps(value, default=_json_default, ensure_ascii=False)``, its encoder made once."""


def _kept_sections(outcome: Accepted) -> dict[str, Any]:
    """The sections of ``outcome`` the store keeps: those of its alert type, present."""
    names = SECTIONS[outcome.envelope.header.alert_type]
    return {name: outcome.sections[name] for name in names if name in outcome.sections}


@dataclass(frozen=True, slots=True)
class _AtRest:
    """One alert version's content as stored (encrypted) and the key rows that open it."""

    ref: bytes
    sections: str
    """JSON: section name to the base64 of its ciphertext."""
    envelope: bytes
    keys: tuple[post_keys.KeyRow, ...]


def _encrypt(
    origin: str, alert_id: str, version: int, sections: Mapping[str, Any], record: bytes
) -> _AtRest:
    """Encrypt each section and the record under a fresh key of its own."""
    ref = post_keys.new_ref()
    plain = {name: _section_json(value).encode("utf-8") for name, value in sections.items()}
    done = seal_version(origin, alert_id, version, {**plain, RECORD: record})
    sealed = {name: base64.b64encode(blob).decode("ascii") for name, _, blob in done[:-1]}
    rows = tuple((ref, name, key) for name, key, _ in done)
    return _AtRest(ref, json.dumps(sealed), done[-1][2], rows)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An accepted record as storing it needs it: the columns of its row, its content
    sealed at rest (None for a cancel) and its search rows, all plain values (the rows'
    alert number left 0, the store's row id put in when it is known).

    ``prepare`` makes it where the record is applied, or beforehand in the process that
    checked the record (``services.check_pool``), so that a bootstrap's storing thread is
    left with the SQLite statements only; plain values cross between processes at a
    fraction of the cost of the decoded record.
    """

    topic: str
    partition: int
    offset: int
    head: tuple[str, str, str, int, str]
    """origin, alert id, alert type, version, operation."""
    rest: tuple[object, ...]
    """message id, issued at, expires at (text and timestamp), handling code, priority,
    action on hit, warning markers (JSON), language, cancel reason."""
    withheld: str
    """JSON: the names of the sections signed but absent (withheld or refused)."""
    at_rest: _AtRest | None
    plates: tuple[str, ...]
    vins: tuple[str, ...]
    documents: tuple[str, ...]
    names: tuple[name_index.Columns, name_index.Columns]
    """The name index rows (``name_index.unplaced``)."""

    @property
    def origin(self) -> str:
        return self.head[0]

    @property
    def alert_id(self) -> str:
        return self.head[1]

    @property
    def version(self) -> int:
        return self.head[3]


def prepare(outcome: Accepted) -> Prepared:
    """What storing ``outcome`` needs beside the store."""
    envelope = outcome.envelope
    header = envelope.header
    cancel = header.operation is Operation.CANCEL
    sections = {} if cancel else _kept_sections(outcome)
    if cancel:
        at_rest = None
    else:
        record = outcome.raw if outcome.raw is not None else encode_envelope(envelope)
        at_rest = _encrypt(header.origin, header.alert_id, header.version, sections, record)
    keys = search_keys(header.alert_type, sections)
    withheld = [name for name in envelope.section_names if name not in outcome.sections]
    return Prepared(
        outcome.topic,
        outcome.partition,
        outcome.offset,
        (header.origin, header.alert_id, header.alert_type.value, header.version,
         header.operation.value),
        (header.message_id, stored_time(header.issued_at), stored_time(header.expires_at),
         header.expires_at.timestamp(), header.handling_code.value, header.priority.value,
         header.action_on_hit.value, json.dumps([m.value for m in header.warning_markers]),
         header.language, header.cancel_reason),
        json.dumps(withheld),
        at_rest,
        tuple(keys.plates),
        tuple(keys.vins),
        tuple(keys.documents),
        # The name rows now, while the names' forms are in names.name_form's cache.
        name_index.unplaced(keys.names),
    )  # fmt: skip


Ready = Prepared | Rejected
"""A checked record as the store takes it in a bootstrap."""


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class PostStore(SqliteFile):
    """The SQLite store of one border post.

    ``before_commit`` is called inside every apply transaction just before it commits;
    tests use it to crash between consuming a record and storing it. ``key_path`` is the
    key store (``adapters.post_keys``; default ``<path>.keys``): every section is stored
    encrypted under a key kept there, and erasure destroys the keys.
    """

    path: Path
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    before_commit: Callable[[Sequence[Outcome]], None] | None = None
    key_path: Path | None = None
    _db: sqlite3.Connection = field(init=False, repr=False)
    _deferred: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            # A bootstrap stores one partition on a worker thread while the next is read
            # (services.post_state); the store is never used by two threads at once.
            self._db = open_durable(self.path)
            self._db.execute("PRAGMA foreign_keys=ON")
            # Erased content is overwritten, not only unlinked (see the module docstring).
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.executescript(_SCHEMA + name_index.SCHEMA)
            _create_indexes(self._db)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            if self.key_path is None:
                self.key_path = post_keys.key_path_for(self.path)
            post_keys.attach(self._db, self.key_path)
            self._upgrade()
            with self._transaction() as db:
                post_keys.pair(db, self.path, self.key_path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the post store {self.path}: {exc}") from exc

    def _upgrade(self) -> None:
        """Encrypt the content a store of schema version 1 kept in clear."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if int(row[0]) >= SCHEMA_VERSION:
            return
        columns = {r[1] for r in self._db.execute("PRAGMA main.table_info(alerts)")}
        with self._transaction() as db:
            if "key_ref" not in columns:
                db.execute("ALTER TABLE alerts ADD COLUMN key_ref BLOB")
            clear = db.execute(
                "SELECT id, origin, alert_id, version, sections_json, envelope FROM alerts "
                "WHERE state = ? AND envelope IS NOT NULL AND key_ref IS NULL",
                (State.ACTIVE.value,),
            ).fetchall()
            sealed = [(alert, _encrypt(origin, alert_id, version, json.loads(text), record))
                      for alert, origin, alert_id, version, text, record in clear]  # fmt: skip
            post_keys.put(db, [key for _, at_rest in sealed for key in at_rest.keys])
        with self._transaction() as db:
            db.executemany(
                "UPDATE alerts SET sections_json = ?, envelope = ?, key_ref = ? WHERE id = ?",
                [(a.sections, a.envelope, a.ref, alert) for alert, a in sealed],
            )
            db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
        self._flush_erased()

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        clock: Callable[[], datetime] | None = None,
        before_commit: Callable[[Sequence[Outcome]], None] | None = None,
        key_path: str | Path | None = None,
    ) -> PostStore:
        """Open (creating if needed) the store at ``path`` and its key store."""
        keys = None if key_path is None else Path(key_path)
        if clock is None:
            return cls(Path(path), before_commit=before_commit, key_path=keys)
        return cls(Path(path), clock=clock, before_commit=before_commit, key_path=keys)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite_tx.immediate(self._db, f"the post store {self.path}")

    # -- writing -----------------------------------------------------------------------

    def apply(self, outcomes: Sequence[Outcome]) -> ApplyResult:
        """Apply ``outcomes`` in order and store each partition's next offset, atomically."""
        next_offsets = {(o.topic, o.partition): o.offset + 1 for o in outcomes}
        ready = self._keep_keys(outcomes)
        dropped: list[bytes] = []
        with self._transaction() as db:
            result = self._apply_all(db, ready, dropped)
            for (topic, partition), offset in next_offsets.items():
                _resume_at(db, topic, partition, offset)
            if self.before_commit is not None:
                self.before_commit(outcomes)
        self._shred(dropped)
        return result

    def _keep_keys(self, records: Sequence[Outcome | Prepared]) -> list[Ready]:
        """``records`` prepared (those not yet), their content encrypted; the keys are
        committed before the content.

        A crash after this leaves keys no row refers to, never content without its keys.
        """
        ready = [prepare(r) if isinstance(r, Accepted) else r for r in records]
        rows = [
            key
            for entry in ready
            if isinstance(entry, Prepared) and entry.at_rest is not None
            for key in entry.at_rest.keys
        ]
        if rows:
            with self._transaction() as db:
                post_keys.put(db, rows)
        return ready

    def _shred(self, refs: Sequence[bytes]) -> None:
        """Destroy the keys under ``refs`` (content superseded or erased), leaving no copy
        in the key store's write-ahead log."""
        if not refs:
            return
        with self._transaction() as db:
            post_keys.destroy(db, refs)
        self._flush_erased("vault")

    def _apply_all(
        self, db: sqlite3.Connection, records: Sequence[Ready], dropped: list[bytes]
    ) -> ApplyResult:
        """Apply ``records`` in order inside the open transaction ``db``; the key
        references of content they supersede (or never store) go to ``dropped``.

        Which of their alerts are stored already is read first, a few statements for the
        whole apply; the rows are then decided in memory, in order, and written with one
        statement (the search rows with one per table, ``_SearchRows``).
        """
        stored = cancelled = stale = rejected = 0
        now = stored_time(self.clock())
        pending = _SearchRows()
        bulk = not self._deferred and len(records) >= BULK_FROM and len(records) >= _held(db)
        known = _known(db, [r for r in records if isinstance(r, Prepared)])
        rows: dict[int, tuple[object, ...]] = {}
        for record in records:
            if isinstance(record, Rejected):
                db.execute(
                    'INSERT INTO rejected (topic, partition, "offset", reason, at) '
                    "VALUES (?, ?, ?, ?, ?)",
                    (record.topic, record.partition, record.offset, record.reason, now),
                )
                rejected += 1
                continue
            result = self._apply_one(record, now, pending, dropped, known, rows)
            stored += result == "stored"
            cancelled += result == "cancelled"
            stale += result == "stale"
        db.executemany(_UPSERT_ALERT, rows.values())
        pending.write(db, bulk=bulk)
        return ApplyResult(stored, cancelled, stale, rejected)

    @staticmethod
    def _apply_one(
        record: Prepared,
        now: str,
        pending: _SearchRows,
        dropped: list[bytes],
        known: _Known,
        rows: dict[int, tuple[object, ...]],
    ) -> str:
        sealed = record.at_rest
        row = known.rows.get((record.origin, record.alert_id))
        if row is not None and (row[2] == State.CANCELLED or row[1] >= record.version):
            if sealed is not None:
                dropped.append(sealed.ref)
            return "stale"
        if row is not None:
            alert = row[0]
            pending.unindex(alert)
            if row[3] is not None:
                dropped.append(bytes(row[3]))
        else:
            alert = known.next_id
            known.next_id += 1
        state = State.CANCELLED if sealed is None else State.ACTIVE
        rows[alert] = (
            alert,
            *record.head,
            state.value,
            *record.rest,
            "{}" if sealed is None else sealed.sections,
            record.withheld,
            None if sealed is None else sealed.envelope,
            record.topic,
            record.partition,
            record.offset,
            now,
            None if sealed is None else sealed.ref,
        )
        known.rows[(record.origin, record.alert_id)] = (
            alert, record.version, state, None if sealed is None else sealed.ref
        )  # fmt: skip
        if sealed is None:
            return "cancelled"
        pending.add(alert, record)
        return "stored"

    @staticmethod
    def _unindex(db: sqlite3.Connection, alert: int) -> None:
        for table in _KEY_TABLES:
            db.execute(f"DELETE FROM {table} WHERE alert = ?", (alert,))
        name_index.unindex(db, alert)

    def record_sync(self, end_offsets: Mapping[TopicPartition, int]) -> None:
        """Note a successful fetch now, and the broker's end offsets when known."""
        with self._transaction() as db:
            for (topic, partition), end in end_offsets.items():
                db.execute(
                    "INSERT INTO offsets (topic, partition, next_offset, end_offset) "
                    "VALUES (?, ?, 0, ?) ON CONFLICT (topic, partition) "
                    "DO UPDATE SET end_offset = excluded.end_offset",
                    (topic, partition, end),
                )
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_sync', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (stored_time(self.clock()),),
            )

    def purge_expired(self) -> int:
        """Drop the content and search keys of alerts whose expiry has passed; return how many."""
        now = self.clock().timestamp()
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, key_ref FROM alerts WHERE state = ? AND expires_ts <= ?",
                (State.ACTIVE.value, now),
            ).fetchall()
            for alert, _ in rows:
                self._unindex(db, alert)
                db.execute(
                    "UPDATE alerts SET state = ?, sections_json = '{}', envelope = NULL, "
                    "key_ref = NULL WHERE id = ?",
                    (State.EXPIRED.value, alert),
                )
        self._shred([bytes(ref) for _, ref in rows if ref is not None])
        if rows:
            self._flush_erased()
        return len(rows)

    # -- the trust store in force (adapters.trust_file.TrustKeeper) ---------------------

    def kept_trust(self) -> str | None:
        """The document of the last valid governed trust store this post ran under."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'trust_store'").fetchone()
        return None if row is None else str(row[0])

    def keep_trust(self, text: str) -> None:
        """Keep ``text`` as the last valid governed trust store, for the next start."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('trust_store', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (text,),
        )

    def record_gap(
        self, topic: str, partition: int, expected: int | None, first: int, healed: str | None
    ) -> None:
        """Note that ``topic/partition`` lost records before the post read them."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO gaps (topic, partition, expected, first_available, healed_from, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (topic, partition, expected, first, healed, stored_time(self.clock())),
            )

    def bootstrap(
        self,
        origin: str,
        feed: TopicPartition,
        records: Sequence[Outcome | Prepared],
        held: Collection[str] | None,
        next_offset: int,
    ) -> tuple[ApplyResult, int]:
        """Apply a feed partition's state and resume the feed at ``next_offset``, atomically.

        ``records`` are the state's verified records (value records only; accepted ones
        may come ``prepare``d already, by the process that checked them), ``held`` the
        alert ids whose latest state record is a value (None: no state to reconcile
        with). Every alert of ``origin`` on that partition the state no longer holds is
        erased (cancelled or expired, then
        tombstoned, while the post was away). Returns the counts and how many were erased.
        """
        topic, partition = feed
        ready = self._keep_keys(records)
        dropped: list[bytes] = []
        with self._transaction() as db:
            result = self._apply_all(db, ready, dropped)
            gone: list[int] = []
            if held is not None:
                db.execute("CREATE TEMP TABLE IF NOT EXISTS held (alert_id TEXT PRIMARY KEY)")
                db.execute("DELETE FROM held")
                db.executemany("INSERT OR IGNORE INTO held VALUES (?)", [(a,) for a in held])
                gone = [
                    row[0]
                    for row in db.execute(
                        "SELECT id FROM alerts WHERE origin = ? AND partition = ? "
                        "AND alert_id NOT IN (SELECT alert_id FROM held)",
                        (origin, partition),
                    )
                ]
                dropped.extend(self._erase_rows(db, gone))
                db.execute("DELETE FROM held")
            _resume_at(db, topic, partition, next_offset)
        self._shred(dropped)
        if gone:
            self._flush_erased()
        return result, len(gone)

    def erase_after_grace(self, grace: timedelta) -> int:
        """Delete the rows of alerts cancelled or expired more than ``grace`` ago.

        Also destroys any key no row refers to (a crash between writing keys and content).
        """
        horizon = (self.clock() - grace).timestamp()
        with self._transaction() as db:
            gone = [
                row[0]
                for row in db.execute(
                    "SELECT id, state, expires_ts, issued_at FROM alerts WHERE state != ?",
                    (State.ACTIVE.value,),
                )
                if (row[2] if row[1] == State.EXPIRED else _time(row[3]).timestamp()) <= horizon
            ]
            refs = self._erase_rows(db, gone)
        with self._transaction() as db:
            orphans = post_keys.destroy_unreferenced(db)
        self._shred(refs)
        if gone or orphans:
            self._flush_erased()
        return len(gone)

    def _erase_rows(self, db: sqlite3.Connection, ids: Sequence[int]) -> list[bytes]:
        """Delete the rows ``ids``; return the key references of the content they held."""
        refs: list[bytes] = []
        for alert in ids:
            self._unindex(db, alert)
            row = db.execute("DELETE FROM alerts WHERE id = ? RETURNING key_ref", (alert,))
            refs.extend(bytes(ref) for (ref,) in row.fetchall() if ref is not None)
        return refs

    def _flush_erased(self, schema: str | None = None) -> None:
        """Move erased pages out of the write-ahead log (of ``schema``, default every file),
        which would keep their old content."""
        try:
            self._db.execute(
                f"PRAGMA {'' if schema is None else schema + '.'}wal_checkpoint(TRUNCATE)"
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot checkpoint the post store {self.path}: {exc}") from exc

    def defer_indexes(self) -> bool:
        """Before loading an empty store (a new post's bootstrap, or one rebuilt): drop the
        search indexes until ``build_indexes``, so that every partition's rows are appended
        and each index is sorted once at the end, not rebuilt per partition. Returns whether
        it did (a store that holds alerts keeps its indexes). Searches stay correct in the
        meantime, only slower; if the process ends first, the next open builds them.
        """
        if self._deferred or self._db.execute("SELECT 1 FROM alerts LIMIT 1").fetchone():
            return False
        with self._transaction() as db:
            _drop_indexes(db)
        self._deferred = True
        return True

    def build_indexes(self) -> None:
        """Build the search indexes ``defer_indexes`` dropped."""
        with self._transaction() as db:
            _create_indexes(db)
        self._deferred = False

    def vacuum(self) -> None:
        """Rebuild the database file (drops free pages), then empty the write-ahead log."""
        try:
            self._db.execute("VACUUM")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot vacuum the post store {self.path}: {exc}") from exc
        self._flush_erased()

    # -- reading -----------------------------------------------------------------------

    def offsets(self) -> dict[TopicPartition, int]:
        """The next offset to consume of every partition the post has stored from."""
        rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets")
        return {(topic, partition): offset for topic, partition, offset in rows}

    def status(self) -> StoreStatus:
        """Last sync time, per-feed positions and lag, counts."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_sync'").fetchone()
        feeds = tuple(
            FeedStatus(*r)
            for r in self._db.execute(
                "SELECT topic, partition, next_offset, end_offset FROM offsets "
                "ORDER BY topic, partition"
            )
        )
        active = self._db.execute(
            "SELECT COUNT(*) FROM alerts WHERE state = ? AND expires_ts > ?",
            (State.ACTIVE.value, self.clock().timestamp()),
        ).fetchone()[0]
        rejected = self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        return StoreStatus(
            None if row is None else _time(row[0]), feeds, active, rejected, self.gaps()
        )

    def gaps(self) -> tuple[Gap, ...]:
        """Every gap recorded, oldest first."""
        rows = self._db.execute(
            "SELECT topic, partition, expected, first_available, healed_from, at FROM gaps "
            "ORDER BY id"
        )
        return tuple(Gap(t, p, e, f, h, _time(at)) for t, p, e, f, h, at in rows)

    def last_received(self) -> dict[str, datetime]:
        """When the newest record still held from each feed topic was stored."""
        rows = self._db.execute("SELECT topic, MAX(received_at) FROM alerts GROUP BY topic")
        return {topic: _time(at) for topic, at in rows if at is not None}

    def _open(self, origin: str, alert_id: str, version: int, ref: bytes | None,
              sealed: Mapping[str, bytes]) -> dict[str, bytes]:  # fmt: skip
        """Decrypt the ``sealed`` parts of one stored version with the keys under ``ref``."""
        keys = {} if ref is None else post_keys.keys_of(self._db, bytes(ref))
        opened: dict[str, bytes] = {}
        for name, blob in sealed.items():
            place = Place(origin, alert_id, version, name)
            key = keys.get(name)
            if key is None:
                raise StoreError(
                    f"the key of {name} of alert {origin}/{alert_id} is not in the key store "
                    f"{self.key_path} (destroyed, or another key store)"
                )
            try:
                opened[name] = open_local(key, place, blob)
            except NotOpened as exc:
                raise StoreError(
                    f"{name} of alert {origin}/{alert_id} does not open with its key "
                    f"(tampered, or moved from another row)"
                ) from exc
        return opened

    def _envelope(self, row: Sequence[Any]) -> Envelope | None:
        """The stored record of a row ``(envelope, origin, alert_id, version, key_ref)``."""
        blob, origin, alert_id, version, ref = row
        if blob is None:
            return None
        return decode_envelope(self._open(origin, alert_id, version, ref, {RECORD: blob})[RECORD])

    def header_of(self, origin: str, alert_id: str) -> Header | None:
        """The signed header of active alert ``alert_id`` (grading and all), or None."""
        row = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM alerts WHERE origin = ? AND alert_id = ? AND state = ?",
            (origin, alert_id, State.ACTIVE.value),
        ).fetchone()
        envelope = None if row is None else self._envelope(row)
        return None if envelope is None else envelope.header

    def find_alert(self, alert_id: str, origin: str | None = None) -> Header | None:
        """The signed header of alert ``alert_id`` in force (of ``origin`` when given), or None."""
        rows = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM alerts WHERE alert_id = ? AND state = ? "
            "AND expires_ts > ?" + ("" if origin is None else " AND origin = ?"),
            (
                alert_id,
                State.ACTIVE.value,
                self.clock().timestamp(),
                *(() if origin is None else (origin,)),
            ),
        ).fetchall()
        if len(rows) != 1 or rows[0][0] is None:
            return None  # none, or the same id from two origins: name the origin
        envelope = self._envelope(rows[0])
        return None if envelope is None else envelope.header

    def rejected(self) -> list[RejectedRecord]:
        """Every refused record, oldest first."""
        rows = self._db.execute(
            'SELECT topic, partition, "offset", reason, at FROM rejected ORDER BY id'
        )
        return [RejectedRecord(t, p, o, r, _time(at)) for t, p, o, r, at in rows]

    def _alerts(self, where: str, params: Sequence[object]) -> list[StoredAlert]:
        # The unary plus keeps SQLite off the (state, expiry) index: a lookup starts
        # from its search table and filters the few rows it finds.
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE {where} "
            "AND +a.state = ? AND +a.expires_ts > ? ORDER BY a.issued_at DESC, a.alert_id",
            (*params, State.ACTIVE.value, self.clock().timestamp()),
        )
        return [self._stored(row) for row in rows]

    def keys_needed(self) -> dict[str, int]:
        """Per encryption key id of this post's service, how many alerts in force (not
        expired, not cancelled) have sections sealed to it: a retired key may be destroyed
        once it needs none (crypto-shredding the copies still sealed to it elsewhere)."""
        rows = self._db.execute(
            f"SELECT topic, {_RECORD_COLUMNS} FROM alerts WHERE state = ? AND expires_ts > ? "
            "AND envelope IS NOT NULL",
            (State.ACTIVE.value, self.clock().timestamp()),
        ).fetchall()
        needed: dict[str, int] = {}
        for topic, *stored in rows:
            # Stored from a feed, or from its state topic (a bootstrap): the reader is the same.
            feed = parse_feed_topic(topic) or parse_feed_state_topic(topic)
            envelope = self._envelope(stored)
            if feed is None or envelope is None:
                continue
            for key_id in wrapped_key_ids(envelope, feed[0]):
                needed[key_id] = needed.get(key_id, 0) + 1
        return dict(sorted(needed.items()))

    def active(self) -> list[StoredAlert]:
        """Every active, unexpired alert, newest first."""
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.state = ? "
            "AND a.expires_ts > ? ORDER BY a.issued_at DESC, a.alert_id",
            (State.ACTIVE.value, self.clock().timestamp()),
        )
        return [self._stored(row) for row in rows]

    def get(self, origin: str, alert_id: str) -> StoredAlert | None:
        """Active alert ``alert_id`` of ``origin``, or None."""
        found = self._alerts("a.origin = ? AND a.alert_id = ?", (origin, alert_id))
        return found[0] if found else None

    def version_of(self, origin: str, alert_id: str) -> tuple[int, State] | None:
        """The stored version and state of an alert, tombstones included."""
        row = self._db.execute(
            "SELECT version, state FROM alerts WHERE origin = ? AND alert_id = ?",
            (origin, alert_id),
        ).fetchone()
        return None if row is None else (row[0], State(row[1]))

    def find_plate(self, plate: str) -> list[StoredAlert]:
        """Active alerts flagging registration plate ``plate``."""
        return self._alerts(
            "a.id IN (SELECT alert FROM plates WHERE plate = ?)", (normalise_plate(plate),)
        )

    def find_vin(self, vin: str) -> list[StoredAlert]:
        """Active alerts flagging vehicle identification number ``vin``."""
        return self._alerts("a.id IN (SELECT alert FROM vins WHERE vin = ?)", (normalise_vin(vin),))

    def find_document(self, number: str) -> list[StoredAlert]:
        """Active alerts flagging identity document number ``number``."""
        return self._alerts(
            "a.id IN (SELECT alert FROM documents WHERE number = ?)",
            (normalise_document(number),),
        )

    def find_name(self, name: str, dob: date | None = None) -> list[StoredAlert]:
        """Active alerts flagging a person by a name ``name`` matches, best match first."""
        return [hit.alert for hit in self.match_name(name, dob)]

    def match_name(self, name: str, dob: date | None = None) -> list[NameHit]:
        """Active alerts flagging a person by a name ``name`` matches, with how, best first.

        Matching is ``domain.names``: spellings, transliterations, scripts, order and one
        typo. ``dob`` narrows to persons born that day or whose date of birth is unknown.
        """
        candidates = name_index.search(self._db, name_form(name), dob)
        if not candidates:
            return []
        by_row = {c.alert: c for c in candidates}
        marks = ", ".join("?" for _ in by_row)
        rows = self._db.execute(
            f"SELECT a.id, {_ALERT_COLUMNS} FROM alerts a WHERE a.id IN ({marks}) "
            "AND +a.state = ? AND +a.expires_ts > ?",
            (*by_row, State.ACTIVE.value, self.clock().timestamp()),
        )
        hits = [NameHit(self._stored(row[1:]), by_row[row[0]].written, by_row[row[0]].match)
                for row in rows]  # fmt: skip
        return sorted(hits, key=lambda h: (-h.match.score, h.alert.origin, h.alert.alert_id))

    def _stored(self, row: Sequence[Any]) -> StoredAlert:
        """A row of ``_ALERT_COLUMNS`` as the alert it holds, its sections opened."""
        sealed = {name: base64.b64decode(blob) for name, blob in json.loads(row[13]).items()}
        opened = self._open(row[0], row[1], row[3], row[16], sealed)
        sections = {name: json.loads(opened[name]) for name in sealed}
        return _stored(row[:13], sections, row[14:16])


@dataclass(frozen=True, slots=True)
class NameHit:
    """An alert found by name: the alert, the stored name that matched, and how."""

    alert: StoredAlert
    name: str
    match: NameMatch


def _stored(row: Sequence[Any], sections: Mapping[str, Any], tail: Sequence[Any]) -> StoredAlert:
    (origin, alert_id, alert_type, version, operation, message_id, issued_at, expires_at,
     handling, priority, action, warnings, language) = row  # fmt: skip
    withheld, received = tail
    return StoredAlert(
        origin=origin,
        alert_id=alert_id,
        alert_type=AlertType(alert_type),
        version=version,
        operation=Operation(operation),
        message_id=message_id,
        issued_at=_time(issued_at),
        expires_at=_time(expires_at),
        handling_code=handling,
        priority=priority,
        action_on_hit=action,
        warning_markers=tuple(json.loads(warnings)),
        language=language,
        sections=sections,
        withheld=tuple(json.loads(withheld)),
        received_at=_time(received),
    )
