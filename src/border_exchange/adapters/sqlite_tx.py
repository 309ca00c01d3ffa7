"""One write transaction on a local SQLite file, its failures mapped to ``StoreError``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from border_exchange.errors import StoreError


@contextmanager
def immediate(db: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` on ``db`` (``what`` names the file in errors); commit, or roll back.

    The connection must be in autocommit mode (``isolation_level=None``). An exception in the
    body rolls back and propagates as it is; SQLite failing to begin or to commit is a
    ``StoreError`` naming ``what``.
    """
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot write {what}: {exc}") from exc
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        db.execute("ROLLBACK")
        raise StoreError(f"cannot commit to {what}: {exc}") from exc
