"""What the router does with a hit report or an acknowledgement in an outbox, as pure functions.

A hit report goes to the alert's origin only, and only if the reporter received the alert
(``ReceivedAlert``, read by the router from the reporter's feed state: what the router
itself delivered to it); an acknowledgement goes back to the reporting service only, and
only if the acknowledging service is the alert's origin, routed the alert to that
service and was delivered the report it answers (``DeliveredHit``, read back from the
origin's hit topic). Like ``routing``, the checks are split around the Ed25519 check
(``check_hit_unsigned``, then ``route_hit_signed``) so that signatures are checked in a
batch. Anything else is refused with a reason of its own, and quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from border_exchange.domain import limits
from border_exchange.domain.audit import AuditKind, ChainHead, chain_fields
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.hits import (
    HitAcknowledgement,
    HitReport,
    MessageKind,
    decode_ack,
    decode_report,
    signed_message,
)
from border_exchange.domain.naming import parse_outbox_topic
from border_exchange.domain.routing import (
    KEY_REASONS,
    Inbound,
    PartitionState,
    QuarantineReason,
    Refused,
    RoutingRules,
)
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import DecodeError, KeyNotValidError, KeyProblem, SignatureError


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """The latest version of an alert the router delivered to the reporter."""

    version: int
    alert_type: AlertType
    cancelled: bool


@dataclass(frozen=True, slots=True)
class DeliveredHit:
    """A hit report the router delivered to the alert's origin: who reported, on what."""

    reporter: str
    post: str
    alert_id: str


@dataclass(frozen=True, slots=True)
class HitSigned:
    """A report or acknowledgement that passed every check before its signature's."""

    kind: MessageKind
    message: HitReport | HitAcknowledgement
    signed: bytes
    public_key: bytes

    @property
    def message_id(self) -> str:
        """The report's hit id or the acknowledgement's ack id."""
        m = self.message
        return m.hit_id if isinstance(m, HitReport) else m.ack_id

    @property
    def alert_id(self) -> str:
        """The alert the message is about (the record's key)."""
        return self.message.alert_id

    @property
    def expires_at(self) -> datetime:
        """Until when the router accepts the message and remembers its id."""
        return self.message.expires_at

    @property
    def issued_at(self) -> datetime:
        """When the message was signed."""
        m = self.message
        return m.reported_at if isinstance(m, HitReport) else m.acknowledged_at

    @property
    def author(self) -> str:
        """The service that sent it: the outbox's owner."""
        m = self.message
        return m.reporter if isinstance(m, HitReport) else m.origin

    @property
    def recipient(self) -> str:
        """The only service it may reach."""
        m = self.message
        return m.alert_origin if isinstance(m, HitReport) else m.reporter


@dataclass(frozen=True, slots=True)
class HitRouted:
    """A report or acknowledgement to deliver to ``recipient``'s hit topic."""

    signed: HitSigned

    @property
    def recipient(self) -> str:
        """The alert's origin (a report) or the reporting service (an acknowledgement)."""
        return self.signed.recipient


def _forged(report: HitReport, why: str) -> Refused:
    return Refused(
        QuarantineReason.HIT_FORGED_REPORTER,
        f"hit report {report.hit_id} claims post {report.post} of {report.reporter}: {why}",
    )


def check_hit_unsigned(
    inbound: Inbound, kind: MessageKind, *, expected_partition: int | None, trust: TrustStore
) -> HitSigned | Refused:
    """Size, decoding, key and partition, author and key validity of a report or an ack."""
    owner = parse_outbox_topic(inbound.topic)
    value = inbound.value
    if value is None:
        return Refused(QuarantineReason.MALFORMED, "record has no value")
    if len(value) > limits.MAX_HIT_BYTES:
        return Refused(
            QuarantineReason.TOO_LARGE,
            f"the {kind.value.lower().replace('_', ' ')} is {len(value):,} bytes, more than "
            f"the limit of {limits.MAX_HIT_BYTES:,} bytes",
        )
    try:
        message: HitReport | HitAcknowledgement = (
            decode_report(value) if kind is MessageKind.HIT_REPORT else decode_ack(value)
        )
        signed = signed_message(value, kind)
    except (DecodeError, SignatureError) as exc:
        return Refused(QuarantineReason.MALFORMED, str(exc))
    if inbound.key != message.alert_id.encode():
        return Refused(
            QuarantineReason.KEY_MISMATCH,
            f"record key {inbound.key!r} is not the alert id {message.alert_id!r}",
        )
    if expected_partition is not None and inbound.partition != expected_partition:
        return Refused(
            QuarantineReason.WRONG_PARTITION,
            f"a message on alert {message.alert_id} belongs on partition {expected_partition}, "
            f"not {inbound.partition}",
        )
    if isinstance(message, HitReport):
        if message.reporter != owner:
            return Refused(
                QuarantineReason.ORIGIN_MISMATCH,
                f"hit report claims reporter {message.reporter} in the outbox of {owner}",
            )
        member = trust.participants.get(message.reporter)
        if member is None or message.post not in member.posts:
            return _forged(message, "no such post in the trust store")
        try:
            key = trust.post_key_for(
                message.reporter, message.post, message.key_id, message.reported_at
            )
        except KeyNotValidError as exc:
            if exc.reason in (KeyProblem.UNKNOWN_KEY, KeyProblem.UNKNOWN_PARTICIPANT):
                return _forged(message, str(exc))
            return Refused(KEY_REASONS[exc.reason], str(exc))
    else:
        if message.origin != owner:
            return Refused(
                QuarantineReason.ORIGIN_MISMATCH,
                f"acknowledgement claims origin {message.origin} in the outbox of {owner}",
            )
        try:
            key = trust.key_for(message.origin, message.key_id, message.acknowledged_at)
        except KeyNotValidError as exc:
            return Refused(KEY_REASONS[exc.reason], str(exc))
    return HitSigned(kind, message, signed, key.raw)


def _refused(reason: QuarantineReason, detail: str) -> Refused:
    return Refused(reason, detail)


def route_hit_signed(
    signed: HitSigned,
    verified: bool,
    *,
    now: datetime,
    rules: RoutingRules,
    state: PartitionState,
    received: ReceivedAlert | None,
    delivered: DeliveredHit | None = None,
) -> HitRouted | Refused:
    """The rest of the checks, against time and memory: deliver, or refuse with why.

    ``received`` is, for a report, what the router delivered of the alert to the
    reporter (None: nothing, or nothing any more). ``delivered`` is, for an
    acknowledgement, the report it answers as the router delivered it to the
    acknowledging origin (None: never delivered there); besides, the alert is on this
    very outbox partition (its key is the alert id), so ``state`` knows who received it.
    """
    message = signed.message
    what = "hit report" if signed.kind is MessageKind.HIT_REPORT else "acknowledgement"
    if not verified:
        if isinstance(message, HitReport):
            return _forged(message, "the signature does not verify with the post's key")
        return _refused(
            QuarantineReason.BAD_SIGNATURE, f"the {what} {signed.message_id} signature fails"
        )
    if signed.message_id in state.seen:
        return _refused(QuarantineReason.REPLAYED, f"{what} {signed.message_id} was already routed")
    if signed.expires_at <= now:
        return _refused(
            QuarantineReason.EXPIRED, f"{what} expired at {signed.expires_at.isoformat()}"
        )
    if signed.issued_at > now + rules.max_clock_skew:
        return _refused(
            QuarantineReason.FUTURE_DATED,
            f"{what} signed at {signed.issued_at.isoformat()}, beyond the clock-skew bound "
            f"of {rules.max_clock_skew} after {now.isoformat()}",
        )
    if isinstance(message, HitReport):
        return _report(signed, message, received)
    return _ack(signed, message, state, delivered)


def _report(
    signed: HitSigned, report: HitReport, received: ReceivedAlert | None
) -> HitRouted | Refused:
    alert = f"alert {report.alert_id} of {report.alert_origin}"
    if received is None:
        return _refused(
            QuarantineReason.HIT_NOT_RECEIVED,
            f"hit report {report.hit_id} on {alert}: {report.reporter} never received it",
        )
    if received.cancelled:
        return _refused(
            QuarantineReason.HIT_ALERT_CANCELLED,
            f"hit report {report.hit_id} on {alert}, which was cancelled",
        )
    if report.alert_version > received.version:
        return _refused(
            QuarantineReason.HIT_UNKNOWN_VERSION,
            f"hit report {report.hit_id} on version {report.alert_version} of {alert}: "
            f"{report.reporter} received version {received.version} at most",
        )
    if report.alert_type is not received.alert_type:
        return _refused(
            QuarantineReason.HIT_UNKNOWN_VERSION,
            f"hit report {report.hit_id} calls {alert} a {report.alert_type}; "
            f"it is a {received.alert_type}",
        )
    return HitRouted(signed)


def _ack(
    signed: HitSigned,
    ack: HitAcknowledgement,
    state: PartitionState,
    delivered: DeliveredHit | None,
) -> HitRouted | Refused:
    what = f"acknowledgement {ack.ack_id} of hit {ack.hit_id}"
    history = state.alerts.get(ack.alert_id)
    if history is None or ack.reporter not in history.recipients:
        return _refused(
            QuarantineReason.ACK_UNKNOWN_HIT,
            f"{what}: alert {ack.alert_id} was never routed from this outbox to {ack.reporter}",
        )
    if delivered is None:
        return _refused(
            QuarantineReason.ACK_UNKNOWN_HIT,
            f"{what}: no such hit report was delivered to {ack.origin}",
        )
    if (delivered.reporter, delivered.post, delivered.alert_id) != (
        ack.reporter,
        ack.post,
        ack.alert_id,
    ):
        return _refused(
            QuarantineReason.ACK_UNKNOWN_HIT,
            f"{what}: that hit was reported to {ack.origin} by {delivered.reporter} post "
            f"{delivered.post} on alert {delivered.alert_id}, not by {ack.reporter} post "
            f"{ack.post} on alert {ack.alert_id}",
        )
    return HitRouted(signed)


def hit_quarantine_fields(signed: HitSigned) -> dict[str, Any]:
    """What the audit record of a refused report or acknowledgement names of it: its id
    and expiry (so a rebuilt router still refuses it again as ``REPLAYED``) and its alert."""
    return {
        "message_id": signed.message_id,
        "alert_id": signed.alert_id,
        "origin": signed.author,
        "issued_at": signed.issued_at,
        "expires_at": signed.expires_at,
    }


def hit_audit_record(
    head: ChainHead, recorded_at: datetime, source_offset: int, routed: HitRouted
) -> dict[str, Any]:
    """The audit record of a delivered report (``HIT_REPORT``) or acknowledgement (``HIT_ACK``).

    It names the message, the alert, its author (``origin``) and the one recipient; no
    place, remarks or instructions: the audit trail outlives the personal data.
    """
    signed = routed.signed
    message = signed.message
    kind = AuditKind.HIT_REPORT if signed.kind is MessageKind.HIT_REPORT else AuditKind.HIT_ACK
    return {
        **chain_fields(head, kind, recorded_at),
        "source_offset": source_offset,
        "message_id": signed.message_id,
        "alert_id": signed.alert_id,
        "version": message.alert_version if isinstance(message, HitReport) else None,
        "origin": signed.author,
        "alert_type": message.alert_type.value if isinstance(message, HitReport) else None,
        "issued_at": signed.issued_at,
        "expires_at": signed.expires_at,
        "outcomes": [
            {
                "participant": routed.recipient,
                "delivered": True,
                "sections": [],
                "reason": None,
                "agreement_id": None,
                "basis": None,
            }
        ],
    }
