"""The HTTP gateway's local SQLite store: client tokens, idempotency keys, accepted messages.

Tokens are kept only as the SHA-256 of a 256-bit random token, so a copy of the file
lets nobody in. An idempotency record is written ``pending`` (with the alert id and the
version known before the publish) before the gateway publishes and ``done`` with the
answer once the transaction committed; a pending record left by a crash is settled at the
next start against the outbox history, so a retried request never publishes twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from border_exchange.adapters import sqlite_tx
from border_exchange.errors import ConfigError, StoreError

TOKEN_PREFIX: Final = "bxg_"
"""Every token starts with this, so secret scanners and people can recognise one."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS clients (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS idempotency (
    client TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    alert_id TEXT,
    prior_version INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    response TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (client, key)
);
CREATE TABLE IF NOT EXISTS accepted (
    message_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    operation TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    client TEXT NOT NULL,
    accepted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accepted_by_alert ON accepted (alert_id, version);
"""


def token_hash(token: str) -> str:
    """The stored form of ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Client:
    """A national system allowed to call the gateway."""

    name: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What is remembered of one ``Idempotency-Key`` of one client."""

    client: str
    key: str
    fingerprint: str
    state: str
    alert_id: str | None
    prior_version: int
    status: int | None
    response: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message whose outbox transaction committed."""

    message_id: str
    alert_id: str
    version: int
    operation: str
    partition: int
    offset: int
    client: str
    accepted_at: str


def _now() -> datetime:
    return datetime.now(UTC)


class GatewayStore:
    """The SQLite file at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL: a commit survives the process (a crash, a restart) without an
            # fsync each; a power cut may lose the last ones (see docs/gateway-and-post.md)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the gateway store {path}: {exc}") from exc

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # A failing statement inside the body is the store's fault too, so it is mapped here.
        try:
            with sqlite_tx.immediate(self._db, f"the gateway store {self.path}") as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreError(f"gateway store {self.path}: {exc}") from exc

    # -- clients -----------------------------------------------------------------------

    def add_client(self, name: str) -> str:
        """Register client ``name`` and return its new token (shown once, stored hashed)."""
        if not name or len(name) > 64 or not all(c.isalnum() or c in "._-" for c in name):
            raise ConfigError(f"client name {name!r}: 1 to 64 letters, digits, '.', '_' or '-'")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._transaction() as db:
            row = db.execute("SELECT revoked_at FROM clients WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] is None:
                raise ConfigError(f"client {name} already has a token (revoke it first)")
            db.execute(
                "INSERT OR REPLACE INTO clients (name, token_sha256, created_at, revoked_at) "
                "VALUES (?, ?, ?, NULL)",
                (name, token_hash(token), _now().isoformat()),
            )
        return token

    def revoke_client(self, name: str) -> None:
        """Revoke ``name``'s token from now on."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE clients SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (_now().isoformat(), name),
            )
            if cursor.rowcount == 0:
                raise ConfigError(f"no client {name} with a valid token")

    def clients(self) -> list[Client]:
        """Every client, revoked ones too, by name."""
        rows = self._db.execute(
            "SELECT name, created_at, revoked_at FROM clients ORDER BY name"
        ).fetchall()
        return [Client(*row) for row in rows]

    def client_for_token(self, token: str) -> str | None:
        """The name of the client whose valid token is ``token``, or None."""
        digest = token_hash(token)
        row = self._db.execute(
            "SELECT name, token_sha256 FROM clients WHERE token_sha256 = ? AND revoked_at IS NULL",
            (digest,),
        ).fetchone()
        if row is None or not hmac.compare_digest(row[1], digest):
            return None
        return str(row[0])

    # -- idempotency -------------------------------------------------------------------

    def begin(
        self,
        client: str,
        key: str,
        fingerprint: str,
        alert_id: str | None,
        prior_version: int,
        ttl: timedelta,
    ) -> IdempotencyRecord | None:
        """Record a pending request; the existing record instead when the key is known."""
        now = _now()
        with self._transaction() as db:
            db.execute("DELETE FROM idempotency WHERE created_at < ?", ((now - ttl).isoformat(),))
            existing = self._record(db, client, key)
            if existing is not None:
                return existing
            db.execute(
                "INSERT INTO idempotency (client, key, fingerprint, state, alert_id, "
                "prior_version, created_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                (client, key, fingerprint, alert_id, prior_version, now.isoformat()),
            )
        return None

    def finish(self, client: str, key: str, status: int, response: dict[str, Any]) -> None:
        """Remember the answer to a request."""
        with self._transaction() as db:
            db.execute(
                "UPDATE idempotency SET state = 'done', status = ?, response = ? "
                "WHERE client = ? AND key = ?",
                (status, json.dumps(response), client, key),
            )

    def forget(self, client: str, key: str) -> None:
        """Drop a pending request that published nothing, so a retry may publish."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM idempotency WHERE client = ? AND key = ? AND state = 'pending'",
                (client, key),
            )

    def pending(self) -> list[IdempotencyRecord]:
        """Requests whose outcome was not recorded (the server stopped during them)."""
        rows = self._db.execute(
            "SELECT client, key FROM idempotency WHERE state = 'pending'"
        ).fetchall()
        records = [self._record(self._db, client, key) for client, key in rows]
        return [r for r in records if r is not None]

    def record(self, client: str, key: str) -> IdempotencyRecord | None:
        """What is remembered of ``client``'s ``key``."""
        return self._record(self._db, client, key)

    @staticmethod
    def _record(db: sqlite3.Connection, client: str, key: str) -> IdempotencyRecord | None:
        row = db.execute(
            "SELECT client, key, fingerprint, state, alert_id, prior_version, status, response "
            "FROM idempotency WHERE client = ? AND key = ?",
            (client, key),
        ).fetchone()
        if row is None:
            return None
        response = json.loads(row[7]) if row[7] is not None else None
        return IdempotencyRecord(
            client=row[0],
            key=row[1],
            fingerprint=row[2],
            state=row[3],
            alert_id=row[4],
            prior_version=row[5],
            status=row[6],
            response=response,
        )

    # -- accepted messages -------------------------------------------------------------

    def add_accepted(self, accepted: Accepted) -> None:
        """Remember a committed message."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO accepted (message_id, alert_id, version, operation, "
                'partition, "offset", client, accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                (
                    accepted.message_id,
                    accepted.alert_id,
                    accepted.version,
                    accepted.operation,
                    accepted.partition,
                    accepted.offset,
                    accepted.client,
                    accepted.accepted_at,
                ),
            )

    def accepted_of(self, alert_id: str) -> list[Accepted]:
        """Every committed message of ``alert_id`` accepted here, by version."""
        rows = self._db.execute(
            'SELECT message_id, alert_id, version, operation, partition, "offset", client, '
            "accepted_at FROM accepted WHERE alert_id = ? ORDER BY version",
            (alert_id,),
        ).fetchall()
        return [Accepted(*row) for row in rows]
