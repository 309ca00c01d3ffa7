"""A SQLite database file as the post's stores open it: durable, shared between threads.

Autocommit mode (each store begins its transactions itself), a write-ahead log, every
commit synced to disk (``synchronous=FULL``: a power cut loses no committed
transaction), a wait of up to 30 s for another connection's lock, and usable from a
worker thread (a store is never used by two threads at once). A store on such a file
is a ``SqliteFile``: closed by ``close`` or at the end of its ``with`` block.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Self


def open_durable(path: Path) -> sqlite3.Connection:
    """``path`` opened as described above; raises ``sqlite3.Error`` when it cannot be."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def stored_time(value: datetime) -> str:
    """``value`` as the stores write a time: ISO 8601 in UTC, with ``+00:00``."""
    return value.astimezone(UTC).isoformat()


class SqliteFile:
    """A store on one SQLite connection (``_db``), closed by ``close`` or ``with``."""

    _db: sqlite3.Connection

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
