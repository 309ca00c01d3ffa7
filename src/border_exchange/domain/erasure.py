"""When each alert's state must be erased, and from which state topics.

An alert's personal data may be kept until its cancellation, or the expiry of its
last version, plus the policy's grace period. The router keeps one
``ErasureSchedule`` per outbox partition: every routed message moves its alert's due
time (an update with a later expiry postpones it, a cancellation fixes it at the
cancel's time plus grace) and adds its recipients; at the due time the router writes
a tombstone for the alert to each recipient's feed state and to the origin's outbox
state. The schedule is rebuilt from the audit chain on start, like the rest of the
router's memory: an entry already due then is issued again (tombstones are
idempotent) when it fell due within ``reissue`` before the last message the previous
run routed, or since (``forget_written``): in case that run died before writing it,
and however long the router was down (a router away longer than ``reissue`` would
otherwise never tombstone what fell due while it was away).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from border_exchange.domain.audit import AuditKind
from border_exchange.domain.catalog import Operation


@dataclass(frozen=True, slots=True)
class Erasure:
    """One alert whose state is due for erasure, and where that state lives."""

    alert_id: str
    due_at: datetime
    recipients: frozenset[str]
    again: bool = False
    """The second tombstone of the alert (see ``ErasureSchedule.written``)."""


@dataclass
class ErasureSchedule:
    """The alerts of one outbox partition still to be erased, soonest first."""

    grace: timedelta
    pending: dict[str, Erasure] = field(default_factory=dict)
    last_routed: datetime | None = None
    """When the latest message noted was routed (on start: the previous run's last)."""
    _heap: list[tuple[datetime, str]] = field(default_factory=list, repr=False)

    def note(
        self,
        alert_id: str,
        operation: Operation,
        expires_at: datetime,
        at: datetime,
        recipients: Collection[str],
    ) -> None:
        """Schedule ``alert_id`` after a message of it was routed at ``at``."""
        if self.last_routed is None or at > self.last_routed:
            self.last_routed = at
        end = at if operation is Operation.CANCEL else expires_at
        known = self.pending.get(alert_id)
        everyone = frozenset(recipients) | (known.recipients if known else frozenset())
        erasure = Erasure(alert_id, end + self.grace, everyone)
        self.pending[alert_id] = erasure
        heapq.heappush(self._heap, (erasure.due_at, alert_id))

    def note_audit(self, record: Mapping[str, Any]) -> None:
        """Schedule from one decoded audit record (decisions only; used on start)."""
        if record.get("kind") != AuditKind.DECISION.value:
            return
        self.note(
            record["alert_id"],
            Operation(record["operation"]),
            record["expires_at"],
            record["recorded_at"],
            [o["participant"] for o in record["outcomes"] if o["delivered"]],
        )

    def forget_before(self, horizon: datetime) -> int:
        """Drop entries due before ``horizon`` (erased by an earlier run); return how many."""
        old = [a for a, e in self.pending.items() if e.due_at < horizon]
        for alert_id in old:
            del self.pending[alert_id]
        self._heap = [(due, a) for due, a in self._heap if a in self.pending]
        heapq.heapify(self._heap)
        return len(old)

    def forget_written(self, now: datetime, reissue: timedelta) -> int:
        """On start: drop the entries the previous run erased, keep those it may not have.

        Kept: every entry due within ``reissue`` before the last message it routed, or
        later (it may have died, or been down, before their time). Returns how many went.
        """
        last = now if self.last_routed is None else min(now, self.last_routed)
        return self.forget_before(last - reissue)

    def take_due(self, now: datetime, limit: int) -> list[Erasure]:
        """Remove and return up to ``limit`` entries due at ``now``, soonest first."""
        taken: list[Erasure] = []
        while self._heap and len(taken) < limit and self._heap[0][0] <= now:
            due, alert_id = heapq.heappop(self._heap)
            erasure = self.pending.get(alert_id)
            if erasure is None or erasure.due_at != due:
                continue  # superseded by a later message of the alert
            del self.pending[alert_id]
            taken.append(erasure)
        return taken

    def written(self, erasures: Collection[Erasure], now: datetime, roll: timedelta) -> None:
        """Schedule a second tombstone ``roll`` after the first of each of ``erasures``.

        Kafka compacts only closed segments and closes (rolls) a segment when a record
        is appended after ``segment.ms``: a quiet state partition would keep the
        segment holding the first tombstone open, and the erased value beside it. The
        second tombstone, written once ``segment.ms`` has passed, closes that segment,
        and the cleaner then removes the value.
        """
        for erasure in erasures:
            if not erasure.again and erasure.alert_id not in self.pending:
                later = Erasure(erasure.alert_id, now + roll, erasure.recipients, again=True)
                self.pending[erasure.alert_id] = later
                heapq.heappush(self._heap, (later.due_at, later.alert_id))

    def restore(self, erasures: Collection[Erasure]) -> None:
        """Put back ``erasures`` whose tombstones did not commit."""
        for erasure in erasures:
            if erasure.alert_id not in self.pending:
                self.pending[erasure.alert_id] = erasure
                heapq.heappush(self._heap, (erasure.due_at, erasure.alert_id))
