"""What the router does with one outbox record, as a pure function.

``route`` checks a record in the order that fails cheapest first (size, decode, key and
partition, origin, key validity and signature, times, replay, lifecycle), asks the
policy for a decision and returns the redacted copy for each recipient; or it
returns why the record is refused. It is ``check_unsigned`` (everything that needs
neither the Ed25519 check nor the memory) then ``route_signed``: the router checks a
batch's signatures together on another thread between the two. ``PartitionState``
is the memory the checks need (message ids already routed, who received each alert);
the router rebuilds it from the audit trail with the same ``apply_*`` functions it
uses live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, TypeVar, cast

from border_exchange.domain import limits
from border_exchange.domain.audit import AuditKind
from border_exchange.domain.catalog import AlertType, Operation
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.envelope import Envelope, Header
from border_exchange.domain.naming import parse_outbox_topic
from border_exchange.domain.policy import Decision, Deliver, PolicyIndex, PolicyInput, decide
from border_exchange.domain.signing import bad_signature, redact, signature_holds, signed_message
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import (
    DecodeError,
    KeyNotValidError,
    KeyProblem,
    SignatureError,
)

_T = TypeVar("_T")


class QuarantineReason(StrEnum):
    """Why the router refused an outbox record."""

    TOO_LARGE = "TOO_LARGE"
    MALFORMED = "MALFORMED"
    KEY_MISMATCH = "KEY_MISMATCH"
    WRONG_PARTITION = "WRONG_PARTITION"
    ORIGIN_MISMATCH = "ORIGIN_MISMATCH"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    KEY_NOT_VALID = "KEY_NOT_VALID"
    KEY_REVOKED = "KEY_REVOKED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    EXPIRED = "EXPIRED"
    FUTURE_DATED = "FUTURE_DATED"
    REPLAYED = "REPLAYED"
    STALE_VERSION = "STALE_VERSION"
    ALERT_CANCELLED = "ALERT_CANCELLED"
    TYPE_CHANGED = "TYPE_CHANGED"
    UNDELIVERABLE = "UNDELIVERABLE"
    """The broker refused a copy of the record for good (too large for a feed, invalid
    there, the router not authorized to write it): decided when it was sent."""
    HIT_NOT_RECEIVED = "HIT_NOT_RECEIVED"
    """A hit report on an alert the router never delivered to the reporter (or no more)."""
    HIT_FORGED_REPORTER = "HIT_FORGED_REPORTER"
    """A hit report not signed by a key of the post it names."""
    HIT_ALERT_CANCELLED = "HIT_ALERT_CANCELLED"
    """A hit report on an alert whose cancellation the reporter received."""
    HIT_UNKNOWN_VERSION = "HIT_UNKNOWN_VERSION"
    """A hit report on a version (or of a type) of the alert the reporter never received."""
    ACK_UNKNOWN_HIT = "ACK_UNKNOWN_HIT"
    """An acknowledgement of a hit report never delivered to the acknowledging service (from
    that post, on that alert), or on an alert this outbox never routed to that reporter."""


SIGNED_OK_REASONS = frozenset(
    {
        QuarantineReason.EXPIRED,
        QuarantineReason.FUTURE_DATED,
        QuarantineReason.STALE_VERSION,
        QuarantineReason.ALERT_CANCELLED,
        QuarantineReason.TYPE_CHANGED,
        QuarantineReason.HIT_NOT_RECEIVED,
        QuarantineReason.HIT_ALERT_CANCELLED,
        QuarantineReason.HIT_UNKNOWN_VERSION,
        QuarantineReason.ACK_UNKNOWN_HIT,
    }
)
"""Refusals of records whose signature verified: their message id counts as used."""

KEY_REASONS: Mapping[KeyProblem, QuarantineReason] = {
    KeyProblem.UNKNOWN_PARTICIPANT: QuarantineReason.UNKNOWN_KEY,
    KeyProblem.UNKNOWN_KEY: QuarantineReason.UNKNOWN_KEY,
    KeyProblem.KEY_NOT_YET_VALID: QuarantineReason.KEY_NOT_VALID,
    KeyProblem.KEY_EXPIRED: QuarantineReason.KEY_NOT_VALID,
    KeyProblem.KEY_REVOKED: QuarantineReason.KEY_REVOKED,
}


@dataclass(frozen=True, slots=True)
class Inbound:
    """One outbox record as consumed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class RoutingRules:
    """Checks whose bounds an operator sets."""

    max_clock_skew: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Routed:
    """A record that passed every check: the decision and each recipient's copy."""

    envelope: Envelope
    decision: Decision
    earlier_recipients: frozenset[str]
    copies: tuple[tuple[str, Envelope], ...]
    """Each recipient's copy: ``envelope`` itself when it keeps every section present."""
    present: frozenset[str] = frozenset()
    """The sections whose content ``envelope`` carries."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A record the router quarantines, with the reason and what was readable of it."""

    reason: QuarantineReason
    detail: str
    header: Header | None = None


@dataclass(frozen=True, slots=True)
class AlertHistory:
    """What the router delivered of one alert so far."""

    alert_type: AlertType
    last_version: int
    recipients: frozenset[str]
    cancelled: bool = False


_SHARED_LIMIT: Final = 4096
"""How many distinct expiry times and histories a partition's memory shares at most."""


@dataclass
class PartitionState:
    """The router's memory for one outbox partition, rebuilt from its audit chain.

    Its size grows with the alerts the partition has carried: one entry per message
    id until the message expires, one history per alert for good (see ``prune``).
    Equal expiry times and equal histories are one object each (most alerts share
    them: review dates fall at midnight, recipient sets repeat), so an alert costs
    little more than its two ids.
    """

    seen: dict[str, datetime] = field(default_factory=dict)
    """Message ids already routed or refused after verification, with their expiry."""
    alerts: dict[str, AlertHistory] = field(default_factory=dict)
    next_offset: int = 0
    """The first outbox offset the chain has no decision for: where routing resumes.

    Every routed or quarantined record's audit record carries its offset and commits
    in the same transaction as its outputs, so this is exact after any crash, however
    far behind the consumer group's committed offset is.
    """
    _shared: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    _expiring: dict[int, list[str]] = field(default_factory=dict, repr=False, compare=False)
    """The ids of ``seen`` by the hour their message expires in, so that ``prune`` reads
    only the hours up to the horizon's: the memory of a busy partition is pruned in
    time proportional to what expires, not to all it remembers."""

    def __post_init__(self) -> None:
        for message_id, expires in self.seen.items():
            self._expiring.setdefault(_hour(expires), []).append(message_id)

    def _see(self, message_id: str, expires_at: datetime) -> None:
        self.seen[message_id] = self._share(expires_at)
        self._expiring.setdefault(_hour(expires_at), []).append(message_id)

    def _share(self, value: _T) -> _T:
        """The one object kept for values equal to ``value`` (immutable ones only)."""
        shared = self._shared.get(value)
        if shared is None:
            if len(self._shared) >= _SHARED_LIMIT:
                self._shared.clear()  # values already remembered stay shared
            self._shared[value] = shared = value
        return cast(_T, shared)

    def apply_routed(self, header: Header, recipients: tuple[str, ...]) -> None:
        """Remember a routed message: its id, and who has now received its alert."""
        self._remember(
            header.message_id,
            header.expires_at,
            header.alert_id,
            header.alert_type,
            header.version,
            header.operation,
            recipients,
        )

    def _remember(
        self,
        message_id: str,
        expires_at: datetime,
        alert_id: str,
        alert_type: AlertType,
        version: int,
        operation: Operation,
        recipients: tuple[str, ...],
    ) -> None:
        self._see(message_id, expires_at)
        known = self.alerts.get(alert_id)
        earlier = known.recipients if known is not None else frozenset()
        self.alerts[alert_id] = self._share(
            AlertHistory(
                alert_type,
                version,
                earlier.union(recipients) if recipients else earlier,
                cancelled=operation is Operation.CANCEL,
            )
        )

    def recover_copy(self, header: Header, recipient: str, source_offset: int | None) -> None:
        """Remember a copy the router wrote to ``recipient``'s feed, found there after the
        audit records that decided it were deleted (``audit_gap``).

        Copies are read feed by feed, not in the order they were decided: the alert's
        history keeps the highest version seen, every recipient, and whether any copy
        was a cancellation. The copy's outbox offset (its ``bx-source``) moves the
        resume point past it, as its decision would have.
        """
        if header.message_id not in self.seen:
            self._see(header.message_id, header.expires_at)
        known = self.alerts.get(header.alert_id)
        cancel = header.operation is Operation.CANCEL
        if known is None:
            history = AlertHistory(
                header.alert_type, header.version, frozenset((recipient,)), cancelled=cancel
            )
        else:
            history = AlertHistory(
                known.alert_type,
                max(known.last_version, header.version),
                known.recipients | {recipient},
                cancelled=known.cancelled or cancel,
            )
        self.alerts[header.alert_id] = self._share(history)
        if source_offset is not None:
            self.next_offset = max(self.next_offset, source_offset + 1)

    def remember_refused(self, message_id: str, expires_at: datetime) -> None:
        """Remember the id of a message refused after its signature verified (or of a hit
        report or acknowledgement, routed or refused so: no alert history to keep)."""
        if message_id not in self.seen:
            self._see(message_id, expires_at)

    def apply_refused(self, header: Header | None, reason: str) -> None:
        """Remember a refused message's id when its signature had verified."""
        if header is not None and reason in SIGNED_OK_REASONS:
            self.remember_refused(header.message_id, header.expires_at)

    def prune(self, now: datetime, rules: RoutingRules) -> int:
        """Forget ids of messages expired long enough that a replay fails as EXPIRED anyway.

        Alert histories are kept, even of alerts whose every version has expired: a
        version's expiry (a review date) bounds only that version, and the origin may
        still send a later update or a cancel with an expiry of its own. Without the
        history, such a message would be decided as if nobody had received the alert:
        a cancel would reach none of the earlier recipients (``NO_EARLIER_VERSION``),
        an update of a cancelled alert would be delivered instead of refused as
        ``ALERT_CANCELLED``, an older version would pass as new instead of
        ``STALE_VERSION``, and the audit replay would find the recorded earlier
        recipients differ from the chain (``HISTORY_MISMATCH``). Forgetting a history
        is only safe for messages that would be refused as expired anyway, and nothing
        bounds the expiry of an alert's later messages; so histories stay, and are
        kept small instead (see the class).
        """
        horizon = now - rules.max_clock_skew
        last = _hour(horizon)
        forgotten = 0
        for hour in [hour for hour in self._expiring if hour <= last]:
            kept = []
            for message_id in self._expiring.pop(hour):
                expires = self.seen.get(message_id)
                if expires is None:
                    continue
                if expires < horizon:
                    del self.seen[message_id]
                    forgotten += 1
                else:
                    kept.append(message_id)
            if kept:
                self._expiring[hour] = kept
        return forgotten


def _hour(moment: datetime) -> int:
    """The hour ``moment`` falls in, counted from the epoch."""
    return int(moment.timestamp()) // 3600


class _Refuse(Exception):
    def __init__(self, reason: QuarantineReason, detail: str, header: Header | None = None):
        super().__init__(detail)
        self.refused = Refused(reason, detail, header)


@dataclass(frozen=True, slots=True)
class Signed:
    """A record that passed every check before its Ed25519 signature's.

    ``signed`` (signature || signing input) and ``public_key`` are what
    ``crypto_sign_open`` needs: the caller checks them, here or in a batch elsewhere,
    and hands the answer to ``route_signed``.
    """

    envelope: Envelope
    signed: bytes
    public_key: bytes


def check_unsigned(
    inbound: Inbound, *, expected_partition: int | None, trust: TrustStore
) -> Signed | Refused:
    """The checks of ``route`` that need neither the signature nor the partition's memory.

    Size (``limits.MAX_ALERT_BYTES``: no copy of a larger record would fit), decoding,
    key and partition, origin, the key's validity at issue time, and every
    check of ``signing.verify`` but the Ed25519 one (section layout and digests).
    """
    owner = parse_outbox_topic(inbound.topic)
    if inbound.value is None:
        return Refused(QuarantineReason.MALFORMED, "record has no value")
    too_large = limits.alert_size_problem(len(inbound.value), "the value")
    if too_large is not None:
        return Refused(QuarantineReason.TOO_LARGE, too_large)
    try:
        envelope = decode_envelope(inbound.value)
    except DecodeError as exc:
        return Refused(QuarantineReason.MALFORMED, str(exc))
    header = envelope.header
    if inbound.key != header.alert_id.encode():
        return Refused(
            QuarantineReason.KEY_MISMATCH,
            f"record key {inbound.key!r} is not the alert id {header.alert_id!r}",
            header,
        )
    if expected_partition is not None and inbound.partition != expected_partition:
        return Refused(
            QuarantineReason.WRONG_PARTITION,
            f"alert {header.alert_id} belongs on partition {expected_partition}, "
            f"not {inbound.partition}",
            header,
        )
    if header.origin != owner:
        return Refused(
            QuarantineReason.ORIGIN_MISMATCH,
            f"message claims origin {header.origin} in the outbox of {owner}",
            header,
        )
    try:
        key = trust.key_for(header.origin, header.key_id, header.issued_at)
        signed = signed_message(envelope, key)
    except KeyNotValidError as exc:
        return Refused(KEY_REASONS[exc.reason], str(exc), header)
    except SignatureError as exc:
        return Refused(QuarantineReason.BAD_SIGNATURE, str(exc), header)
    return Signed(envelope, signed, key.raw)


def signature_verifies(signed: Signed) -> bool:
    """Whether the Ed25519 signature of ``signed`` verifies (as ``signing.verify`` checks it)."""
    return signature_holds(signed.signed, signed.public_key)


def _remembered(
    envelope: Envelope, now: datetime, rules: RoutingRules, state: PartitionState
) -> None:
    """The checks against time and the partition's memory; raises ``_Refuse``."""
    header = envelope.header
    if header.message_id in state.seen:
        raise _Refuse(
            QuarantineReason.REPLAYED, f"message {header.message_id} was already routed", header
        )
    if header.expires_at <= now:
        raise _Refuse(
            QuarantineReason.EXPIRED, f"expired at {header.expires_at.isoformat()}", header
        )
    if header.issued_at > now + rules.max_clock_skew:
        raise _Refuse(
            QuarantineReason.FUTURE_DATED,
            f"issued at {header.issued_at.isoformat()}, beyond the clock-skew bound of "
            f"{rules.max_clock_skew} after {now.isoformat()}",
            header,
        )
    history = state.alerts.get(header.alert_id)
    if history is not None:
        if history.cancelled:
            raise _Refuse(
                QuarantineReason.ALERT_CANCELLED, f"alert {header.alert_id} was cancelled", header
            )
        if header.version <= history.last_version:
            raise _Refuse(
                QuarantineReason.STALE_VERSION,
                f"version {header.version} of alert {header.alert_id} is not after "
                f"version {history.last_version}",
                header,
            )
        if header.alert_type is not history.alert_type:
            raise _Refuse(
                QuarantineReason.TYPE_CHANGED,
                f"alert {header.alert_id} is a {history.alert_type}, not a {header.alert_type}",
                header,
            )


def route(
    inbound: Inbound,
    *,
    expected_partition: int | None,
    trust: TrustStore,
    policy: PolicyIndex,
    now: datetime,
    rules: RoutingRules,
    state: PartitionState,
) -> Routed | Refused:
    """Check one outbox record and decide who receives which sections of it."""
    checked = check_unsigned(inbound, expected_partition=expected_partition, trust=trust)
    if isinstance(checked, Refused):
        return checked
    return route_signed(
        checked, signature_verifies(checked), policy=policy, now=now, rules=rules, state=state
    )


def route_signed(
    signed: Signed,
    verified: bool,
    *,
    policy: PolicyIndex,
    now: datetime,
    rules: RoutingRules,
    state: PartitionState,
) -> Routed | Refused:
    """The rest of ``route`` for a record ``check_unsigned`` passed, ``verified`` or not.

    Splitting ``route`` there lets a caller check a batch's signatures together (on
    another thread), then decide each record in order: the memory a record is checked
    against includes every earlier record of the batch.
    """
    envelope = signed.envelope
    if not verified:
        return Refused(
            QuarantineReason.BAD_SIGNATURE, str(bad_signature(envelope.header)), envelope.header
        )
    try:
        _remembered(envelope, now, rules, state)
    except _Refuse as refusal:
        return refusal.refused
    header = envelope.header
    history = state.alerts.get(header.alert_id)
    earlier = history.recipients if history is not None else frozenset()
    decision = decide(
        PolicyInput(
            header.origin,
            header.alert_type,
            header.handling_code,
            header.operation,
            header.alert_id,
            header.action_on_hit,
        ),
        now,
        policy,
        earlier,
    )
    present = envelope.present_sections
    redacted: dict[tuple[str, ...], Envelope] = {}
    copies = []
    for participant, outcome in decision.outcomes.items():
        if not isinstance(outcome, Deliver):
            continue
        sections = outcome.sections
        copy = redacted.get(sections)
        if copy is None:
            # A recipient permitted every section present gets the envelope itself;
            # recipients permitted the same sections share one redacted copy.
            copy = envelope if present.issubset(sections) else redact(envelope, sections)
            redacted[sections] = copy
        copies.append((participant, copy))
    return Routed(envelope, decision, earlier, tuple(copies), present)


_DECIDING_KINDS: Final = frozenset(
    kind.value
    for kind in (AuditKind.DECISION, AuditKind.QUARANTINE, AuditKind.HIT_REPORT, AuditKind.HIT_ACK)
)
"""Audit records that decide one outbox record: the chain is the consumed position."""
_HIT_KINDS: Final = frozenset((AuditKind.HIT_REPORT.value, AuditKind.HIT_ACK.value))


def replay_audit(state: PartitionState, record: Mapping[str, Any]) -> None:
    """Bring ``state`` up to date with one decoded audit record (used on start-up)."""
    kind = record.get("kind")
    offset = record.get("source_offset")
    if offset is not None and kind in _DECIDING_KINDS:
        state.next_offset = max(state.next_offset, int(offset) + 1)
    if kind in _HIT_KINDS:
        state.remember_refused(record["message_id"], record["expires_at"])
    if kind == AuditKind.DECISION.value:
        state._remember(
            record["message_id"],
            record["expires_at"],
            record["alert_id"],
            AlertType(record["alert_type"]),
            int(record["version"]),
            Operation(record["operation"]),
            tuple(o["participant"] for o in record["outcomes"] if o["delivered"]),
        )
    elif (
        kind == AuditKind.QUARANTINE.value
        and record.get("message_id")
        and record.get("quarantine_reason") in SIGNED_OK_REASONS
    ):
        state.remember_refused(record["message_id"], record["expires_at"])
