"""A border post's officers, their web sessions and the consultation log, in SQLite.

Kept in a file of its own beside the post store (``officers_path``): the log must still
be written when the store is unreadable, and erasing alerts from the store never
touches the record of who consulted them.

Passwords are hashed with Argon2id (``argon2-cffi``). After ``MAX_FAILURES`` wrong
passwords in a row an account is locked for ``LOCKOUT``; a disabled account cannot log
in and its sessions end. Sessions are random tokens stored as their SHA-256 with a
CSRF token and an expiry; the log is appended in one transaction per search, chained
as ``domain.consultation`` says.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from border_exchange.adapters import sqlite_tx
from border_exchange.adapters.sqlite_files import SqliteFile, open_durable, stored_time
from border_exchange.domain.consultation import Entry, Search, chain
from border_exchange.errors import ConfigError, LoginRefusal, LoginRefused, StoreError

MAX_FAILURES: Final = 5
"""Wrong passwords in a row after which an account is locked."""

LOCKOUT: Final = timedelta(minutes=15)
"""How long a locked account stays locked."""

SESSION_LIFETIME: Final = timedelta(hours=8)
"""How long a web session lasts after login (one shift)."""

MIN_PASSWORD_CHARS: Final = 10

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS officers (
    name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, officer TEXT NOT NULL, csrf TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consultations (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, officer TEXT NOT NULL, channel TEXT NOT NULL,
    kind TEXT NOT NULL, query TEXT NOT NULL, dob TEXT, hits TEXT NOT NULL,
    outcome TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL
);
"""

_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


class Role(StrEnum):
    """What an officer may do: search (officer), or also see the log (post administrator)."""

    OFFICER = "officer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Officer:
    """An account as listed."""

    name: str
    role: Role
    disabled: bool
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in officer's session."""

    officer: Officer
    csrf: str
    expires_at: datetime


def officers_path(store: Path) -> Path:
    """Where the officers and consultation log of the post store ``store`` live."""
    return store.with_name(store.name + ".officers")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class OfficerDB(SqliteFile):
    """The officers, sessions and consultation log of one post."""

    path: Path
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _db: sqlite3.Connection = field(init=False, repr=False)
    hasher: PasswordHasher = field(default_factory=PasswordHasher, repr=False)

    def __post_init__(self) -> None:
        try:
            self._db = open_durable(self.path)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the officers file {self.path}: {exc}") from exc

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite_tx.immediate(self._db, f"the officers file {self.path}")

    # -- accounts ----------------------------------------------------------------------

    def add(self, name: str, password: str, role: Role) -> None:
        """Create account ``name``; a clear error when the name is taken or weak input."""
        if not name or set(name) - _NAME_CHARS or len(name) > 64:
            raise ConfigError(
                f"officer name {name!r}: use 1-64 lower-case letters, digits, '.', '_', '-'"
            )
        if len(password) < MIN_PASSWORD_CHARS:
            raise ConfigError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM officers WHERE name = ?", (name,)).fetchone():
                raise ConfigError(f"officer {name!r} exists already")
            db.execute(
                "INSERT INTO officers (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                (name, self.hasher.hash(password), role.value, stored_time(self.clock())),
            )

    def officers(self) -> list[Officer]:
        """Every account, by name."""
        rows = self._db.execute(
            "SELECT name, role, disabled, locked_until FROM officers ORDER BY name"
        )
        return [_officer(row) for row in rows]

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (ending its sessions) or re-enable account ``name``."""
        with self._transaction() as db:
            done = db.execute(
                "UPDATE officers SET disabled = ?, failures = 0, locked_until = NULL "
                "WHERE name = ?",
                (int(disabled), name),
            )
            if done.rowcount == 0:
                raise ConfigError(f"no officer {name!r}")
            if disabled:
                db.execute("DELETE FROM sessions WHERE officer = ?", (name,))

    def login(self, name: str, password: str) -> tuple[str, Session]:
        """Open a session for ``name`` (its token and the session), or raise ``LoginRefused``."""
        now = self.clock()
        row = self._db.execute(
            "SELECT name, role, disabled, locked_until, password_hash FROM officers WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            self.hasher.hash(password)  # an unknown name takes as long as a wrong password
            raise LoginRefused(LoginRefusal.UNKNOWN)
        officer = _officer(row[:4])
        if officer.disabled:
            raise LoginRefused(LoginRefusal.DISABLED)
        if officer.locked_until is not None and officer.locked_until > now:
            raise LoginRefused(LoginRefusal.LOCKED)
        try:
            self.hasher.verify(row[4], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise LoginRefused(self._failed(name, now)) from None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + SESSION_LIFETIME
        with self._transaction() as db:
            db.execute(
                "UPDATE officers SET failures = 0, locked_until = NULL WHERE name = ?", (name,)
            )
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", (stored_time(now),))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (_token_hash(token), name, csrf, stored_time(expires)),
            )
        return token, Session(Officer(name, officer.role, False, None), csrf, expires)

    def _failed(self, name: str, now: datetime) -> LoginRefusal:
        with self._transaction() as db:
            failures = db.execute(
                "UPDATE officers SET failures = failures + 1 WHERE name = ? RETURNING failures",
                (name,),
            ).fetchone()[0]
            if failures < MAX_FAILURES:
                return LoginRefusal.WRONG_PASSWORD
            db.execute(
                "UPDATE officers SET failures = 0, locked_until = ? WHERE name = ?",
                (stored_time(now + LOCKOUT), name),
            )
        return LoginRefusal.LOCKED

    def session(self, token: str) -> Session | None:
        """The live session of ``token``, or None (unknown, expired, or account disabled)."""
        row = self._db.execute(
            "SELECT o.name, o.role, o.disabled, o.locked_until, s.csrf, s.expires_at "
            "FROM sessions s JOIN officers o ON o.name = s.officer WHERE s.token_hash = ?",
            (_token_hash(token),),
        ).fetchone()
        if row is None:
            return None
        officer, expires = _officer(row[:4]), datetime.fromisoformat(row[5])
        if officer.disabled or expires <= self.clock():
            return None
        return Session(officer, row[4], expires)

    def logout(self, token: str) -> None:
        """End the session of ``token``."""
        with self._transaction() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    # -- the consultation log ----------------------------------------------------------

    def log(self, search: Search) -> Entry:
        """Append ``search`` to the consultation log."""
        with self._transaction() as db:
            row = db.execute(f"SELECT {_ENTRY} FROM consultations ORDER BY seq DESC LIMIT 1")
            last = row.fetchone()
            entry = chain(None if last is None else _entry(last), search)
            record = entry.as_record()
            record["hits"] = json.dumps(record["hits"])
            db.execute(
                f"INSERT INTO consultations ({_ENTRY}) VALUES ({', '.join('?' * 11)})",
                tuple(record[column.strip()] for column in _ENTRY.split(",")),
            )
        return entry

    def entries(self, since: datetime | None = None) -> list[Entry]:
        """The log, oldest first (from ``since`` when given)."""
        where, params = ("WHERE at >= ?", (stored_time(since),)) if since else ("", ())
        rows = self._db.execute(f"SELECT {_ENTRY} FROM consultations {where} ORDER BY seq", params)
        return [_entry(row) for row in rows]


_ENTRY: Final = "seq, at, officer, channel, kind, query, dob, hits, outcome, prev, hash"


def _entry(row: tuple[object, ...]) -> Entry:
    seq, at, officer, channel, kind, query, dob, hits, outcome, prev, digest = row
    search = Search(
        datetime.fromisoformat(str(at)),
        str(officer),
        str(channel),
        str(kind),
        str(query),
        None if dob is None else str(dob),
        tuple(json.loads(str(hits))),
        str(outcome),
    )
    return Entry(int(str(seq)), search, str(prev), str(digest))


def _officer(row: tuple[object, ...]) -> Officer:
    name, role, disabled, locked = row
    return Officer(
        str(name),
        Role(str(role)),
        bool(disabled),
        None if locked is None else datetime.fromisoformat(str(locked)),
    )
