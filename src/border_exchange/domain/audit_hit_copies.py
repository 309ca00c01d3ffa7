"""The auditor's check of the copies in the hit topics, as its check of the partner feeds.

Each ``HIT_REPORT`` or ``HIT_ACK`` audit record delivers one outbox record to one
recipient's hit topic (``bx.<R>.hits``): a report to the alert's origin, an
acknowledgement back to the reporting service. The router copies the outbox bytes as
they are (nothing is redacted), so a copy must be byte for byte the outbox record its
decision names; when that record was not replayed, the copy's own signature is verified.
Over a period:

- every delivery decided in the window has exactly one copy (``HIT_COPY_MISSING``
  unless the copy's partition was since emptied by retention; ``HIT_COPY_DUPLICATE``);
- every record of a hit topic stamped in the window is the copy of a delivery to that
  topic's participant (``HIT_COPY_UNAUTHORISED``), whose signature holds
  (``SIGNATURE_INVALID``).

A copy whose author's audit chain was not replayed is not judged: its decision is not
among those read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from border_exchange.domain.audit_values import (
    AuditEntry,
    LogRecord,
    Stats,
    Violation,
    ViolationCode,
    Window,
)
from border_exchange.domain.hits import (
    HitAcknowledgement,
    HitReport,
    MessageKind,
    decode_ack,
    decode_report,
    message_kind,
    verify_ack,
    verify_report,
)
from border_exchange.domain.naming import parse_hits_topic
from border_exchange.domain.trust_timeline import TrustTimeline
from border_exchange.errors import BorderExchangeError, DecodeError


@dataclass(slots=True)
class _Delivery:
    entry: AuditEntry
    value: bytes | None
    """The outbox record's bytes, when it was replayed and verified."""
    inside: bool
    """Decided in the window (else only known, so that its copy is not called unauthorised)."""


@dataclass
class HitCopies:
    """The deliveries of hit reports and acknowledgements, and the copies that match them."""

    window: Window
    trust: TrustTimeline
    deliveries: dict[tuple[str, str], _Delivery] = field(default_factory=dict)
    """Per (recipient, hit id or ack id): the delivery the audit trail records."""

    def expect(self, entry: AuditEntry, value: bytes | None, inside: bool) -> None:
        """A ``HIT_REPORT`` or ``HIT_ACK`` record of an audit chain, with the outbox bytes
        it names when they were replayed and verified; ``inside``: decided in the window."""
        message_id = str(entry.record.get("message_id"))
        for outcome in entry.record.get("outcomes") or ():
            if not outcome["delivered"]:
                continue
            key = (str(outcome["participant"]), message_id)
            known = self.deliveries.get(key)
            if known is None or (inside and not known.inside):
                self.deliveries[key] = _Delivery(entry, value, inside)

    def check(
        self,
        logs: Iterable[LogRecord],
        authors: Collection[str],
        erased: Callable[[str, AuditEntry], bool],
        stats: Stats,
    ) -> list[Violation]:
        """Match the hit-topic records ``logs`` to the deliveries; what is wrong.

        ``authors`` are the services whose audit chains were replayed; ``erased`` says
        whether a delivery's copy in a topic was deleted under that topic's retention.
        """
        found: list[Violation] = []

        def add(code: ViolationCode, log: LogRecord, detail: str) -> None:
            found.append(Violation(code, log.topic, log.partition, log.offset, detail))

        matched: dict[tuple[str, str], LogRecord] = {}
        for log in logs:
            recipient = parse_hits_topic(log.topic)
            if recipient is None:
                continue
            message = _decoded(log.value)
            if message is None:
                if log.timestamp in self.window:
                    add(
                        ViolationCode.HIT_COPY_UNAUTHORISED,
                        log,
                        "not a hit report or acknowledgement",
                    )
                continue
            message_id, author = _identity(message)
            if author not in authors:
                continue
            key = (recipient, message_id)
            delivery = self.deliveries.get(key)
            if delivery is None:
                if log.timestamp in self.window:
                    add(
                        ViolationCode.HIT_COPY_UNAUTHORISED,
                        log,
                        f"{_what(message)} {message_id} of {author}: no decision of the router "
                        f"delivers it to {recipient}",
                    )
                continue
            if not delivery.inside:
                continue
            if key in matched:
                add(
                    ViolationCode.HIT_COPY_DUPLICATE,
                    log,
                    f"{_what(message)} {message_id} already delivered to {recipient} at "
                    f"offset {matched[key].offset}",
                )
                continue
            matched[key] = log
            stats.hit_copies_checked += 1
            if delivery.value is not None and log.value == delivery.value:
                continue
            problem = self._signature_problem(message, log)
            if problem is not None:
                add(ViolationCode.SIGNATURE_INVALID, log, f"hit topic copy: {problem}")
            elif delivery.value is not None:
                add(
                    ViolationCode.HIT_COPY_UNAUTHORISED,
                    log,
                    f"{_what(message)} {message_id}: other bytes than the outbox record "
                    f"decided at {_where(delivery.entry)}",
                )
        for (recipient, message_id), delivery in self.deliveries.items():
            if not delivery.inside or (recipient, message_id) in matched:
                continue
            topic = f"bx.{recipient}.hits"
            if erased(topic, delivery.entry):
                stats.erased_feed += 1
                continue
            found.append(
                Violation(
                    ViolationCode.HIT_COPY_MISSING,
                    delivery.entry.log.topic,
                    delivery.entry.log.partition,
                    delivery.entry.log.offset,
                    f"{delivery.entry.kind} {message_id} delivered to {recipient} has no "
                    f"record in {topic}",
                )
            )
        return found

    def _signature_problem(
        self, message: HitReport | HitAcknowledgement, log: LogRecord
    ) -> str | None:
        trust = self.trust.at(log.timestamp)
        try:
            if isinstance(message, HitReport):
                verify_report(log.value, trust)
            else:
                verify_ack(log.value, trust)
        except BorderExchangeError as exc:
            return str(exc)
        return None


def _decoded(value: bytes | None) -> HitReport | HitAcknowledgement | None:
    kind = message_kind(value)
    try:
        if kind is MessageKind.HIT_REPORT:
            return decode_report(value or b"")
        if kind is MessageKind.HIT_ACK:
            return decode_ack(value or b"")
    except DecodeError:
        return None
    return None


def _identity(message: HitReport | HitAcknowledgement) -> tuple[str, str]:
    """(its id, the service that sent it)."""
    if isinstance(message, HitReport):
        return message.hit_id, message.reporter
    return message.ack_id, message.origin


def _what(message: HitReport | HitAcknowledgement) -> str:
    return "hit report" if isinstance(message, HitReport) else "acknowledgement"


def _where(entry: AuditEntry) -> str:
    return f"{entry.log.topic}/{entry.log.partition}/{entry.log.offset}"
