"""The post's key store: the key of every stored section, in a SQLite file of its own.

The content store (``post.db``) holds each section encrypted (``domain.at_rest``); this
file (``post.db.keys`` beside it, unless placed elsewhere) holds the keys, one row per
section of each stored version, under a random reference the alert's row names. It is
attached to the store's connection as ``vault``; each transaction writes one of the two
files only, so each commit is atomic on its own, and the order makes a crash harmless:
keys are written before the content that uses them, and destroyed after the content that
used them is gone. A crash in between leaves keys no row refers to, which
``destroy_unreferenced`` removes (the post's periodic erasure runs it).

Both files carry the same random store id: a content store opened with another key store
(a backup restored beside a fresh key file, say) is refused with a clear error instead of
failing on every read.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from border_exchange.errors import StoreError

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS vault.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vault.section_keys (
    ref BLOB NOT NULL, section TEXT NOT NULL, key BLOB NOT NULL, PRIMARY KEY (ref, section)
) WITHOUT ROWID;
"""
REF_SIZE: Final = 16

KeyRow = tuple[bytes, str, bytes]
"""A ``section_keys`` row: reference, section name, key."""


def key_path_for(store: Path) -> Path:
    """Where the key store of the content store at ``store`` lives by default."""
    return store.with_name(store.name + ".keys")


def new_ref() -> bytes:
    """A reference for the keys of one stored version of an alert: never reused, and
    increasing (the time in nanoseconds, then random bytes), so that a bulk load appends
    to the key table instead of inserting all over it."""
    return time.time_ns().to_bytes(8, "big") + secrets.token_bytes(REF_SIZE - 8)


def attach(db: sqlite3.Connection, path: Path) -> None:
    """Attach the key store at ``path`` (creating it) as ``vault``, erasing like the store."""
    db.execute("ATTACH DATABASE ? AS vault", (str(path),))
    db.execute("PRAGMA vault.journal_mode=WAL")
    db.execute("PRAGMA vault.synchronous=FULL")
    db.execute("PRAGMA vault.secure_delete=ON")
    db.executescript(SCHEMA)


def _meta(db: sqlite3.Connection, schema: str) -> str | None:
    row = db.execute(f"SELECT value FROM {schema}.meta WHERE key = 'store_id'").fetchone()
    return None if row is None else str(row[0])


def _set_meta(db: sqlite3.Connection, schema: str, value: str) -> None:
    db.execute(
        f"INSERT INTO {schema}.meta (key, value) VALUES ('store_id', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (value,),
    )


def pair(db: sqlite3.Connection, store: Path, keys: Path) -> None:
    """Check that the content store and the key store belong together (or pair new ones).

    A content store that holds encrypted sections and a key store of another id (or a new
    one) is a ``StoreError``: those sections can no longer be read, which must be said.
    """
    mine, theirs = _meta(db, "main"), _meta(db, "vault")
    if mine is not None and mine == theirs:
        return
    holds = db.execute("SELECT 1 FROM main.alerts WHERE key_ref IS NOT NULL LIMIT 1").fetchone()
    if mine is not None and holds is not None:
        raise StoreError(
            f"the key store {keys} does not belong to the post store {store}: the sections "
            f"stored there cannot be opened (restore the key store that goes with it, or "
            f"start the post with an empty store to rebuild it from the state topics)"
        )
    paired = theirs if theirs is not None else secrets.token_hex(16)
    _set_meta(db, "main", paired)
    _set_meta(db, "vault", paired)


def put(db: sqlite3.Connection, rows: Iterable[KeyRow]) -> None:
    """Store key rows (inside an open transaction)."""
    db.executemany("INSERT INTO vault.section_keys (ref, section, key) VALUES (?, ?, ?)", rows)


def keys_of(db: sqlite3.Connection, ref: bytes) -> Mapping[str, bytes]:
    """The keys stored under ``ref``, by section name (empty once destroyed)."""
    rows = db.execute("SELECT section, key FROM vault.section_keys WHERE ref = ?", (ref,))
    return {section: bytes(key) for section, key in rows}


def destroy(db: sqlite3.Connection, refs: Iterable[bytes]) -> None:
    """Delete every key stored under ``refs`` (inside an open transaction)."""
    db.executemany("DELETE FROM vault.section_keys WHERE ref = ?", ((ref,) for ref in refs))


def destroy_unreferenced(db: sqlite3.Connection) -> int:
    """Delete the keys no alert row refers to (left by a crash); return how many."""
    cursor = db.execute(
        "DELETE FROM vault.section_keys WHERE ref NOT IN "
        "(SELECT key_ref FROM main.alerts WHERE key_ref IS NOT NULL)"
    )
    return int(cursor.rowcount)
