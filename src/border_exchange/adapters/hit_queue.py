"""A post's hit reports in its own database: signed and queued, sent, acknowledged.

A report is signed when the officer records it and kept, as the signed bytes, in a
``hit_reports`` table of the post's SQLite file (beside the post store's tables). The
sender sends what is queued and marks it sent once the broker acknowledged it; the
report's id stays the same, so a report sent twice (a crash between the broker's
acknowledgement and the mark) is refused by the router as ``REPLAYED`` and delivered once.
The origin's acknowledgement, when it comes back, is kept beside its report.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from border_exchange.adapters import sqlite_tx
from border_exchange.adapters.sqlite_files import SqliteFile, open_durable, stored_time
from border_exchange.domain.hits import HitAcknowledgement, HitReport
from border_exchange.errors import StoreError

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS hit_reports (
    hit_id TEXT PRIMARY KEY,
    alert_origin TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    alert_version INTEGER NOT NULL,
    action TEXT NOT NULL,
    place TEXT NOT NULL,
    hit_at TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    value BLOB NOT NULL,
    state TEXT NOT NULL,
    sent_at TEXT,
    ack_id TEXT,
    acknowledged_at TEXT,
    instructions TEXT,
    desk_contact TEXT
);
CREATE INDEX IF NOT EXISTS hit_reports_state ON hit_reports (state);
"""


class SendState(StrEnum):
    """Whether a report has left the post."""

    QUEUED = "QUEUED"
    SENT = "SENT"


@dataclass(frozen=True, slots=True)
class PostHit:
    """One report as the post keeps it, with the acknowledgement when it came."""

    hit_id: str
    alert_origin: str
    alert_id: str
    alert_version: int
    action: str
    place: str
    hit_at: datetime
    reported_at: datetime
    state: SendState
    sent_at: datetime | None
    ack_id: str | None
    acknowledged_at: datetime | None
    instructions: str | None
    desk_contact: str | None


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _post_hit(row: tuple[Any, ...]) -> PostHit:
    """A report from its row, in the order ``HitQueue.reports`` selects the columns."""
    hit_id, origin, alert_id, version, action, place, hit_at, reported_at = row[:8]
    state, sent_at, ack_id, acknowledged_at, instructions, contact = row[8:]
    return PostHit(
        hit_id,
        origin,
        alert_id,
        version,
        action,
        place,
        datetime.fromisoformat(hit_at),
        datetime.fromisoformat(reported_at),
        SendState(state),
        _time(sent_at),
        ack_id,
        _time(acknowledged_at),
        instructions,
        contact,
    )


class HitQueue(SqliteFile):
    """The ``hit_reports`` table of a post's database."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = open_durable(self.path)
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the hit reports of {self.path}: {exc}") from exc

    def queue(self, report: HitReport, value: bytes) -> None:
        """Keep the signed ``value`` of ``report``, to be sent."""
        with sqlite_tx.immediate(self._db, f"the hit reports of {self.path}") as db:
            db.execute(
                "INSERT INTO hit_reports (hit_id, alert_origin, alert_id, alert_version, action, "
                "place, hit_at, reported_at, value, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report.hit_id,
                    report.alert_origin,
                    report.alert_id,
                    report.alert_version,
                    report.action.value,
                    report.place,
                    stored_time(report.hit_at),
                    stored_time(report.reported_at),
                    value,
                    SendState.QUEUED.value,
                ),
            )

    def queued(self) -> list[tuple[str, str, bytes]]:
        """``(hit_id, alert_id, signed value)`` of every report not yet sent, oldest first."""
        rows = self._db.execute(
            "SELECT hit_id, alert_id, value FROM hit_reports WHERE state = ? ORDER BY reported_at",
            (SendState.QUEUED.value,),
        )
        return [(h, a, bytes(v)) for h, a, v in rows]

    def mark_sent(self, hit_id: str, at: datetime) -> None:
        """Note that the broker acknowledged report ``hit_id``."""
        with sqlite_tx.immediate(self._db, f"the hit reports of {self.path}") as db:
            db.execute(
                "UPDATE hit_reports SET state = ?, sent_at = ? WHERE hit_id = ?",
                (SendState.SENT.value, stored_time(at), hit_id),
            )

    def acknowledge(self, ack: HitAcknowledgement) -> bool:
        """Keep ``ack`` beside its report; False when the post sent no such report."""
        with sqlite_tx.immediate(self._db, f"the hit reports of {self.path}") as db:
            changed = db.execute(
                "UPDATE hit_reports SET ack_id = ?, acknowledged_at = ?, instructions = ?, "
                "desk_contact = ? WHERE hit_id = ? AND alert_id = ?",
                (
                    ack.ack_id,
                    stored_time(ack.acknowledged_at),
                    ack.instructions,
                    ack.desk_contact,
                    ack.hit_id,
                    ack.alert_id,
                ),
            ).rowcount
        return changed > 0

    def reports(self) -> list[PostHit]:
        """Every report of the post, newest first."""
        rows = self._db.execute(
            "SELECT hit_id, alert_origin, alert_id, alert_version, action, place, hit_at, "
            "reported_at, state, sent_at, ack_id, acknowledged_at, instructions, desk_contact "
            "FROM hit_reports ORDER BY reported_at DESC"
        )
        return [_post_hit(row) for row in rows]
