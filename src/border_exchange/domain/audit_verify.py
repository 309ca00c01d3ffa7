"""The auditor's verdict over a replayed period, computed from records alone (no I/O, no router).

The inputs are the Kafka records an auditor read: every audit chain partition,
the outbox partitions they audit, the partner feeds and the quarantine. The
``Replay`` accumulator takes them as ``LogRecord`` values and ``Replay.verdict``
checks, without trusting the router:

- each chain links (``prev_hash`` is the chain hash of the record before, ``seq``
  contiguous) and every checkpoint verifies with a hub key valid when it was written;
  a deleted, inserted, reordered or altered record is located;
- every outbox record in the period has exactly one DECISION or QUARANTINE record,
  and every such record names an outbox record that exists and says what it holds;
- every decision re-evaluates to the same outcomes under the agreement set it names
  (looked up by digest), at its time, with the history it recorded;
- every delivery has exactly one partner-feed copy with the permitted sections, and
  every feed record is such a copy; every origin signature verifies on every copy.

Signatures: a message's outbox copy is verified once, in full (``verify_trusted``).
A feed copy is accepted when its header, section names, section digests and signature
are byte-identical to the verified outbox copy and each section it carries matches
its digest: the signing input of a redacted copy is the same bytes as the outbox
copy's, so this is the same check as verifying the copy's signature again. A feed
copy whose outbox copy was not replayed is verified in full.
"""

from __future__ import annotations

import gc
import hashlib
import sys
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from operator import itemgetter
from typing import Any, Final

from nacl.exceptions import BadSignatureError

from border_exchange.domain.agreements import AgreementSet
from border_exchange.domain.audit import (
    AUDIT_SCHEMA,
    GENESIS,
    AuditKind,
    chain_hash,
    chain_id,
    head_signing_input,
    header_fields,
    outcome_entries,
)
from border_exchange.domain.audit_gap import ChainStart
from border_exchange.domain.audit_reader import AUDIT_FINGERPRINT, read_audit
from border_exchange.domain.catalog import ActionOnHit, AlertType, HandlingCode, Operation
from border_exchange.domain.consent import Consent, consents
from border_exchange.domain.encoding import (
    PREFIX_SIZE,
    decode_envelope,
    decode_envelope_split,
    decode_record,
)
from border_exchange.domain.envelope import Envelope, Header
from border_exchange.domain.fastpath import key_hash
from border_exchange.domain.fastpath import sections_tail as native_sections_tail
from border_exchange.domain.memo import PerObject
from border_exchange.domain.naming import parse_feed_topic, parse_outbox_topic
from border_exchange.domain.policy import Deliver, Outcome, PolicyIndex, PolicyInput, decide
from border_exchange.domain.schemas import SINGLE_OBJECT_MAGIC as MAGIC
from border_exchange.domain.signature_batch import SignatureChecks, signature_checks
from border_exchange.domain.signing import (
    bad_signature,
    section_digest,
    signed_message,
    verify_trusted,
)
from border_exchange.domain.trust import HUB, TrustStore
from border_exchange.domain.trust_timeline import TrustTimeline
from border_exchange.errors import BorderExchangeError, DecodeError, KeyNotValidError

AUDIT_PREFIX: Final = "bx.hub.audit."


class ViolationCode(StrEnum):
    """What the replay found wrong; each violation is located at a topic, partition and offset."""

    CHAIN_BROKEN = "CHAIN_BROKEN"
    """A record does not link to its predecessor: one was altered, inserted or moved."""
    AUDIT_DELETED = "AUDIT_DELETED"
    """Audit records were deleted: the partition's log begins past offset 0 (audit topics
    keep every record), or positions are missing between two records."""
    SEQ_GAP = "SEQ_GAP"
    """Records link by hash but their positions are not contiguous."""
    CHAIN_FOREIGN = "CHAIN_FOREIGN"
    """A record names another chain than the partition it sits in."""
    CHECKPOINT_INVALID = "CHECKPOINT_INVALID"
    """A checkpoint's signature does not verify with a hub key valid at its time."""
    AUDIT_MALFORMED = "AUDIT_MALFORMED"
    """An audit record cannot be decoded or lacks a field its kind requires."""
    MISSING_AUDIT = "MISSING_AUDIT"
    """An outbox record has neither a DECISION nor a QUARANTINE record."""
    DUPLICATE_AUDIT = "DUPLICATE_AUDIT"
    """An outbox record has more than one DECISION or QUARANTINE record."""
    AUDIT_WITHOUT_SOURCE = "AUDIT_WITHOUT_SOURCE"
    """An audit record names an outbox offset that holds no committed record."""
    AUDIT_MISMATCH = "AUDIT_MISMATCH"
    """A DECISION describes another message than the outbox record it names."""
    ORIGIN_MISMATCH = "ORIGIN_MISMATCH"
    """A message was decided (not quarantined) although it claims another origin than its outbox."""
    DECISION_MISMATCH = "DECISION_MISMATCH"
    """Re-evaluating a decision under its recorded agreement set gives another outcome."""
    HISTORY_MISMATCH = "HISTORY_MISMATCH"
    """The earlier recipients a decision used differ from what the chain shows."""
    AGREEMENT_SET_UNKNOWN = "AGREEMENT_SET_UNKNOWN"
    """The agreement set a decision names cannot be retrieved."""
    FEED_MISSING = "FEED_MISSING"
    """A delivery decision has no partner-feed record: permitted and lost."""
    FEED_UNAUTHORISED = "FEED_UNAUTHORISED"
    """A partner-feed record matches no delivery decision: delivered without permission."""
    FEED_SECTIONS_MISMATCH = "FEED_SECTIONS_MISMATCH"
    """A partner-feed record carries other sections than the decision permitted."""
    FEED_DUPLICATE = "FEED_DUPLICATE"
    """A delivery appears more than once in a partner feed."""
    FEED_SECTION_DISCLOSED = "FEED_SECTION_DISCLOSED"
    """A partner-feed record carries a section its decision withheld from that partner."""
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    """The origin's signature or a section digest does not verify (outbox or feed copy)."""
    QUARANTINE_MISSING = "QUARANTINE_MISSING"
    """A QUARANTINE audit record has no record in the quarantine topic."""
    QUARANTINE_UNAUDITED = "QUARANTINE_UNAUDITED"
    """A quarantine record has no QUARANTINE audit record."""
    QUARANTINE_MISMATCH = "QUARANTINE_MISMATCH"
    """A quarantine record's length or SHA-256 is not that of the outbox record it names."""
    AGREEMENT_NOT_SIGNED = "AGREEMENT_NOT_SIGNED"
    """A delivery rests on an agreement that both parties had not signed (``domain.consent``)."""
    TRUST_STORE_NOT_GOVERNED = "TRUST_STORE_NOT_GOVERNED"
    """The router routed under a trust store without governance, or recorded none
    (``domain.audit_trust``)."""
    TRUST_STORE_MISMATCH = "TRUST_STORE_MISMATCH"
    """The router routed under a trust store that is not among the governed ones the auditor
    was given, or took it outside its validity window (``domain.audit_trust``)."""
    TRUST_STORE_NOT_ACCEPTED = "TRUST_STORE_NOT_ACCEPTED"
    """The router took a trust store its governance refuses in place of the one before
    (an entry not signed by its participant, no quorum, a serial not after it)."""
    TRUST_STORE_EXPIRED = "TRUST_STORE_EXPIRED"
    """Decisions were made after the trust store in force had passed its validity window."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One thing found wrong, where it was found, and what exactly."""

    code: ViolationCode
    topic: str
    partition: int
    offset: int
    detail: str

    def as_json(self) -> dict[str, Any]:
        """The violation as a JSON object."""
        return {
            "code": self.code.value,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One committed Kafka record as read: where it is, its timestamp, key and value."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        """The first Kafka header called ``name``, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Window:
    """The replayed period: ``start`` inclusive, ``end`` exclusive."""

    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A decoded audit record with its place in the log and its chain hash."""

    log: LogRecord
    record: Mapping[str, Any]
    hash: bytes

    @property
    def seq(self) -> int:
        """Position in the chain."""
        return int(self.record["seq"])

    @property
    def kind(self) -> str:
        """DECISION, QUARANTINE or CHECKPOINT."""
        return str(self.record["kind"])

    @property
    def recorded_at(self) -> datetime:
        """When the router wrote it."""
        value: datetime = self.record["recorded_at"]
        return value


@dataclass(frozen=True, slots=True)
class ChainSummary:
    """What was replayed of one chain."""

    chain: str
    records: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    from_genesis: bool


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One delivery of a participant's alert: to whom, which sections, under which agreement."""

    message_id: str
    alert_id: str
    version: int
    alert_type: str
    operation: str
    recipient: str
    sections: tuple[str, ...]
    agreement_id: str | None
    basis: str | None
    agreement_set: str
    agreement_label: str
    recorded_at: datetime
    audit_topic: str
    audit_partition: int
    audit_offset: int

    def as_json(self) -> dict[str, Any]:
        """The disclosure as a JSON object."""
        return {
            "message_id": self.message_id,
            "alert_id": self.alert_id,
            "version": self.version,
            "alert_type": self.alert_type,
            "operation": self.operation,
            "recipient": self.recipient,
            "sections": list(self.sections),
            "agreement_id": self.agreement_id,
            "basis": self.basis,
            "agreement_set": self.agreement_set,
            "agreement_label": self.agreement_label,
            "recorded_at": _iso(self.recorded_at),
            "audit": f"{self.audit_topic}/{self.audit_partition}/{self.audit_offset}",
        }


@dataclass
class Stats:
    """Counters of a replay, for the report."""

    audit_records: int = 0
    decisions: int = 0
    quarantined: int = 0
    checkpoints: int = 0
    outbox_records: int = 0
    feed_records: int = 0
    signatures_verified: int = 0
    copies_checked: int = 0
    erased_outbox: int = 0
    """Outbox records decided in the window and since deleted by the outbox's retention."""
    erased_feed: int = 0
    """Feed copies delivered in the window and since deleted by the feed's retention."""
    delivered: dict[tuple[str, str], Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    """Per (origin, recipient): deliveries by alert type."""
    denied: dict[tuple[str, str], Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    """Per (origin, recipient): denials by reason."""
    quarantine_reasons: dict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    """Per origin: quarantined records by reason."""
    agreement_sets: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Per agreement-set digest: its label and how many decisions named it."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of a replay: every violation, the counters, and notes on what was assumed."""

    window: Window
    violations: tuple[Violation, ...]
    stats: Stats
    chains: tuple[ChainSummary, ...]
    notes: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.violations


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def audit_chain_of(audit_topic: str, partition: int) -> str:
    """The chain id audited by partition ``partition`` of audit topic ``audit_topic``."""
    return chain_id(f"bx.{audit_topic.removeprefix(AUDIT_PREFIX)}.outbox", partition)


# --- the hash chain -------------------------------------------------------------------------


def decode_audit(log: LogRecord) -> AuditEntry | Violation:
    """The audit record in ``log``, or the violation saying why it is not one."""
    value = log.value
    try:
        if type(value) is bytes and value[2:10] == AUDIT_FINGERPRINT and value[:2] == MAGIC:
            schema, record = AUDIT_SCHEMA, read_audit(value, PREFIX_SIZE)
        else:
            schema, record = decode_record(value)
    except DecodeError as exc:
        return Violation(
            ViolationCode.AUDIT_MALFORMED, log.topic, log.partition, log.offset, str(exc)
        )
    if schema != AUDIT_SCHEMA:
        return Violation(
            ViolationCode.AUDIT_MALFORMED,
            log.topic,
            log.partition,
            log.offset,
            f"a {schema} record in an audit topic",
        )
    return AuditEntry(log, record, chain_hash(value))


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The outcome of checking one chain partition: its decoded records, violations, summary."""

    entries: tuple[AuditEntry, ...]
    """The records that belong to the chain, in chain order (inserted ones left out)."""
    violations: tuple[Violation, ...]
    summary: ChainSummary


def _at(entry: AuditEntry, code: ViolationCode, detail: str) -> Violation:
    return Violation(code, entry.log.topic, entry.log.partition, entry.log.offset, detail)


def _timeline(trust: TrustStore | TrustTimeline) -> TrustTimeline:
    """``trust`` as a timeline (one store: in force throughout)."""
    return trust if isinstance(trust, TrustTimeline) else TrustTimeline.fixed(trust)


def _checkpoint_problem(entry: AuditEntry, trust: TrustTimeline) -> str | None:
    record = entry.record
    key_id = record.get("checkpoint_key_id")
    signature = record.get("checkpoint_signature")
    if not key_id or not signature:
        return "a checkpoint without key id or signature"
    try:
        key = trust.at(entry.recorded_at).key_for(HUB, str(key_id), entry.recorded_at)
        message = head_signing_input(str(record["chain"]), entry.seq, bytes(record["prev_hash"]))
        key.verify_key.verify(message, bytes(signature))
    except KeyNotValidError as exc:
        return f"hub key {key_id}: {exc}"
    except (BadSignatureError, ValueError, TypeError):
        return f"signature by hub key {key_id} does not verify over seq {entry.seq}"
    return None


def _deleted_start(topic: str, partition: int, start: ChainStart) -> Violation:
    """The violation of a chain whose start was deleted, located where the log now begins."""
    if start.first_seq is None:
        rest = "no record is left"
    elif start.first_seq == 0:
        rest = "the chain starts again there from seq 0"
    else:
        gone = "seq 0" if start.first_seq == 1 else f"seq 0-{start.first_seq - 1}"
        rest = f"the chain goes on there from seq {start.first_seq}: {gone} are gone"
    return Violation(
        ViolationCode.AUDIT_DELETED,
        topic,
        partition,
        start.log_start,
        f"deleted: the records before offset {start.log_start} of {topic}/{partition} "
        f"(the partition's log now begins there); {rest}",
    )


def verify_chain(
    topic: str,
    partition: int,
    logs: Sequence[LogRecord],
    trust: TrustStore | TrustTimeline,
    start: ChainStart | None = None,
) -> ChainCheck:
    """Check one audit partition's records (in offset order) link into one chain, and locate breaks.

    Each checkpoint's signature is checked with the hub's keys of the trust store in force
    when it was written (``trust``: one store, or a timeline of them).

    The first record replayed anchors the chain; when it is not seq 0 its predecessor
    is taken as recorded. A break is classified by looking ahead: if a later record
    names the expected predecessor, the records between were inserted (or, when that
    later record carries the expected position and the ones between come after it,
    moved); otherwise the expected position is missing (deleted) or, when the position
    is right but the hash is not, the predecessor was altered. ``start`` says where the
    partition's log begins and its first record's position: records deleted at the
    chain's start are located there.
    """
    trust = _timeline(trust)
    expected_chain = audit_chain_of(topic, partition)
    violations: list[Violation] = []
    if start is not None and start.truncated:
        violations.append(_deleted_start(topic, partition, start))
    entries: list[AuditEntry] = []
    for log in logs:
        decoded = decode_audit(log)
        if isinstance(decoded, Violation):
            violations.append(decoded)
            continue
        entries.append(decoded)
    for entry in entries:
        if entry.record["chain"] != expected_chain:
            violations.append(
                _at(
                    entry,
                    ViolationCode.CHAIN_FOREIGN,
                    f"names chain {entry.record['chain']!r}, this partition holds {expected_chain}",
                )
            )
    checkpoints = 0
    order = list(entries)
    index = 0
    previous: AuditEntry | None = None
    while index < len(order):
        entry = order[index]
        prev_hash = bytes(entry.record["prev_hash"])
        if previous is None:
            if entry.seq == 0 and prev_hash != GENESIS:
                violations.append(
                    _at(entry, ViolationCode.CHAIN_BROKEN, "seq 0 does not start from genesis")
                )
        elif prev_hash != previous.hash:
            violation, resume = _classify_break(order, index, previous, trust)
            violations.append(violation)
            if resume is not None:  # re-check from where the chain goes on
                order, index, previous = resume
                continue
        elif entry.seq != previous.seq + 1:
            violations.append(
                _at(
                    entry,
                    ViolationCode.SEQ_GAP,
                    f"seq {entry.seq} links by hash to seq {previous.seq} "
                    f"at offset {previous.log.offset}",
                )
            )
        if entry.kind == AuditKind.CHECKPOINT:
            checkpoints += 1
            problem = _checkpoint_problem(entry, trust)
            if problem is not None:
                violations.append(_at(entry, ViolationCode.CHECKPOINT_INVALID, problem))
        previous = entry
        index += 1
    summary = ChainSummary(
        chain=expected_chain,
        records=len(order),
        first_seq=order[0].seq if order else None,
        last_seq=order[-1].seq if order else None,
        checkpoints=checkpoints,
        from_genesis=bool(order) and order[0].seq == 0,
    )
    return ChainCheck(tuple(order), tuple(violations), summary)


def _classify_break(
    order: list[AuditEntry], index: int, previous: AuditEntry, trust: TrustTimeline
) -> tuple[Violation, tuple[list[AuditEntry], int, AuditEntry] | None]:
    """Locate the break before ``order[index]``.

    Returns the violation and, when the records are to be re-read differently (one
    moved back into place, inserted ones left out), the order, the index and the
    predecessor to go on from; None goes on from ``order[index]`` as it is.
    """
    entry = order[index]
    expected = previous.seq + 1
    resume = next(
        (j for j in range(index + 1, len(order)) if order[j].record["prev_hash"] == previous.hash),
        None,
    )
    if resume is not None:
        between = order[index:resume]
        successor = order[resume]
        if successor.seq == expected and all(e.seq > expected for e in between):
            moved = [*order[:index], successor, *between, *order[resume + 1 :]]
            offsets = ", ".join(str(e.log.offset) for e in between)
            return (
                _at(
                    entry,
                    ViolationCode.CHAIN_BROKEN,
                    f"reordered: seq {expected} is at offset {successor.log.offset}, "
                    f"after the later record(s) at offset(s) {offsets}",
                ),
                (moved, index, previous),
            )
        offsets = ", ".join(str(e.log.offset) for e in between)
        return (
            _at(
                entry,
                ViolationCode.CHAIN_BROKEN,
                f"inserted: record(s) at offset(s) {offsets} are not in the chain, which goes on "
                f"from seq {previous.seq} (offset {previous.log.offset}) "
                f"at offset {successor.log.offset}",
            ),
            ([*order[:index], *order[resume:]], index, previous),
        )
    earlier_at = next((j for j in range(index) if order[j].hash == entry.record["prev_hash"]), None)
    if earlier_at is not None:
        earlier = order[earlier_at]
        first = order[earlier_at + 1]
        return (
            _at(
                first,
                ViolationCode.CHAIN_BROKEN,
                f"inserted: the chain goes on from seq {earlier.seq} (offset {earlier.log.offset}) "
                f"at offset {entry.log.offset}; record(s) from offset {first.log.offset} "
                f"to {previous.log.offset} are not in it",
            ),
            ([*order[: earlier_at + 1], *order[index:]], earlier_at + 1, earlier),
        )
    genuine = previous.kind == AuditKind.CHECKPOINT and _checkpoint_problem(previous, trust) is None
    if entry.seq == expected and not genuine:
        return (
            _at(
                previous,
                ViolationCode.CHAIN_BROKEN,
                f"altered: seq {previous.seq} does not hash to the prev_hash its successor "
                f"(offset {entry.log.offset}) names",
            ),
            None,
        )
    if entry.seq > expected:
        missing = (
            f"seq {expected}" if entry.seq == expected + 1 else f"seq {expected}-{entry.seq - 1}"
        )
        return (
            _at(
                entry,
                ViolationCode.AUDIT_DELETED,
                f"deleted: {missing} missing between offsets {previous.log.offset} "
                f"and {entry.log.offset}",
            ),
            None,
        )
    return (
        _at(
            entry,
            ViolationCode.CHAIN_BROKEN,
            f"not linked: seq {entry.seq} after seq {previous.seq} names an unknown prev_hash "
            + (
                "while its predecessor is a valid checkpoint (inserted or altered)"
                if genuine
                else "(inserted or altered)"
            ),
        ),
        None,
    )


# --- cross-checks over one period -----------------------------------------------------------

_HEADER_FIELDS: Final = (
    "message_id",
    "alert_id",
    "version",
    "origin",
    "alert_type",
    "operation",
    "handling_code",
    "action_on_hit",
    "issued_at",
    "expires_at",
)


def _outcome_key(
    outcome: Outcome,
) -> tuple[bool, tuple[str, ...], str | None, str | None, str | None]:
    if isinstance(outcome, Deliver):
        return (True, outcome.sections, None, outcome.agreement_id, outcome.basis.value)
    return (False, (), outcome.reason.value, outcome.agreement_id, None)


def _recorded_key(
    outcome: Mapping[str, Any],
) -> tuple[bool, tuple[str, ...], str | None, str | None, str | None]:
    if outcome["delivered"]:
        return (True, tuple(outcome["sections"]), None, outcome["agreement_id"], outcome["basis"])
    return (False, (), outcome["reason"], outcome["agreement_id"], None)


def _describe(key: tuple[bool, tuple[str, ...], str | None, str | None, str | None]) -> str:
    delivered, sections, reason, agreement, basis = key
    if delivered:
        return f"deliver [{', '.join(sections)}] under {agreement} ({basis})"
    return f"deny {reason}" + (f" under {agreement}" if agreement else "")


_RECORDED_HEADER: Final = itemgetter(*_HEADER_FIELDS)


def _differing_fields(
    record: Mapping[str, Any], header: Header, present: frozenset[str]
) -> list[str]:
    """The fields (and ``sections``) in which an audit record does not describe a message."""
    actual = (
        header.message_id,
        header.alert_id,
        header.version,
        header.origin,
        header.alert_type,  # codes compare equal to their text
        header.operation,
        header.handling_code,
        header.action_on_hit,
        header.issued_at,
        header.expires_at,
    )
    try:
        same = _RECORDED_HEADER(record) == actual
    except KeyError:
        same = False
    differing = []
    if not same:
        fields = header_fields(header)
        differing = [name for name in _HEADER_FIELDS if record.get(name) != fields[name]]
    if sorted(present) != list(record.get("sections") or ()):
        differing.append("sections")
    return differing


_TYPES: Final = {member.value: member for member in AlertType}
_HANDLING: Final = {member.value: member for member in HandlingCode}
_OPERATIONS: Final = {member.value: member for member in Operation}
_ACTIONS: Final = {member.value: member for member in ActionOnHit}


def policy_input(record: Mapping[str, Any]) -> PolicyInput:
    """The policy's view of the message an audit DECISION describes; ValueError when malformed."""
    alert_type = _TYPES.get(record["alert_type"])
    handling = _HANDLING.get(record["handling_code"])
    operation = _OPERATIONS.get(record["operation"])
    action = record.get("action_on_hit")
    on_hit = None if action is None else _ACTIONS.get(action)
    if (
        alert_type is None
        or handling is None
        or operation is None
        or (on_hit is None) != (action is None)
    ):  # the enum constructors name the value that is not a code
        alert_type = AlertType(record["alert_type"])
        handling = HandlingCode(record["handling_code"])
        operation = Operation(record["operation"])
        on_hit = None if action is None else ActionOnHit(action)
    return PolicyInput(
        origin=str(record["origin"]),
        alert_type=alert_type,
        handling_code=handling,
        operation=operation,
        alert_id=str(record["alert_id"]),
        action_on_hit=on_hit,
    )


_AS_RECORDED_KEPT: Final = 4096


class Reevaluator:
    """Re-decides recorded decisions under their recorded agreement sets; indexes are cached."""

    def __init__(
        self, agreement_sets: Mapping[str, AgreementSet], trust: TrustStore | TrustTimeline
    ) -> None:
        self.agreement_sets = agreement_sets
        self.trust = _timeline(trust)
        """The trust store in force at each time: a decision's agreements are established
        by their parties' signatures under the store in force when it was made."""
        self._consents: dict[tuple[str, int], Mapping[str, Consent]] = {}
        self._indexes: dict[tuple[str, frozenset[str], int], PolicyIndex] = {}
        self._as_recorded = PerObject[Mapping[str, Outcome], list[dict[str, Any]]](
            outcome_entries, _AS_RECORDED_KEPT
        )
        self._inputs: dict[tuple[Any, ...], PolicyInput] = {}
        self._decided: dict[tuple[Any, ...], tuple[PolicyIndex, object, Mapping[str, Outcome]]] = {}

    def differences(self, record: Mapping[str, Any]) -> list[str] | None:
        """How the recorded outcomes differ from a re-evaluation; None when the set is unknown."""
        digest = record.get("agreement_set")
        aset = self.agreement_sets.get(str(digest))
        if aset is None:
            return None
        listed = record["outcomes"]
        names = frozenset([str(o["participant"]) for o in listed])
        store = self._store(record)
        index = self._indexes.get((aset.digest, names, id(store)))
        if index is None:
            index = self._indexes[(aset.digest, names, id(store))] = PolicyIndex.build(
                aset, names, self.consent(aset, store)
            )
        outcomes = self._outcomes(record, index)
        if listed == self._recorded_form(outcomes):
            return []
        recorded = {str(o["participant"]): _recorded_key(o) for o in listed}
        return self._compare(outcomes, recorded)

    def _store(self, record: Mapping[str, Any]) -> TrustStore:
        """The trust store in force when the decision ``record`` was made."""
        at = record.get("recorded_at")
        return self.trust.at(at) if isinstance(at, datetime) else self.trust.first

    def consent(self, aset: AgreementSet, store: TrustStore | None = None) -> Mapping[str, Consent]:
        """What the parties' signatures establish of each agreement of ``aset`` under ``store``
        (default: the first in force; cached)."""
        store = self.trust.first if store is None else store
        found = self._consents.get((aset.digest, id(store)))
        if found is None:
            found = self._consents[(aset.digest, id(store))] = consents(aset, store)
        return found

    def unsigned_deliveries(self, record: Mapping[str, Any]) -> list[str]:
        """The deliveries of a decision that rest on an agreement both parties had not signed."""
        aset = self.agreement_sets.get(str(record.get("agreement_set")))
        if aset is None:
            return []
        consent = self.consent(aset, self._store(record))
        problems = []
        for outcome in record.get("outcomes") or ():
            agreement_id = outcome.get("agreement_id")
            if not outcome.get("delivered") or outcome.get("basis") != "AGREEMENT":
                continue
            granted = consent.get(str(agreement_id))
            if granted is None or not granted.signed_by_both:
                why = (
                    f"the set has no agreement {agreement_id}"
                    if granted is None
                    else granted.not_signed_detail()
                )
                problems.append(f"delivered to {outcome['participant']}: {why}")
        return problems

    def _outcomes(self, record: Mapping[str, Any], index: PolicyIndex) -> Mapping[str, Outcome]:
        """The outcomes ``decide`` gives for the message and history ``record`` describes.

        ``decide`` takes the time only through ``index.template`` (the agreements'
        outcomes for the origin, type and handling code in one time segment, a shared
        mapping) and then applies the lifecycle rules of the operation to the earlier
        recipients; the alert id does not enter it. So decisions alike in origin, type,
        handling code, operation, action on hit, template and earlier recipients are
        decided once per replay (the tests hold ``decide`` to this). The codes were
        checked by ``policy_input`` when the first of them was decided.
        """
        raw = (
            record["origin"],
            record["alert_type"],
            record["handling_code"],
            record["operation"],
            record.get("action_on_hit"),
        )
        at = record["recorded_at"]
        earlier = record["earlier_recipients"]
        if at.tzinfo is None:  # decide says why not
            return decide(policy_input(record), at, index, earlier).outcomes
        alert = self._inputs.get(raw)
        if alert is None:
            alert = self._inputs[raw] = policy_input(record)
        template = index.template(alert, at)  # reads the origin, type and handling code only
        key = (id(index), raw, id(template), tuple(earlier))
        known = self._decided.get(key)
        if known is not None and known[0] is index and known[1] is template:
            return known[2]
        outcomes = decide(policy_input(record), at, index, earlier).outcomes
        if len(self._decided) >= _AS_RECORDED_KEPT:
            self._decided.clear()
        self._decided[key] = (index, template, outcomes)
        return outcomes

    def _recorded_form(self, outcomes: Mapping[str, Outcome]) -> list[dict[str, Any]]:
        """The outcome list a faithful audit record holds for ``outcomes``, in its order.

        A recorded list equal to it compares equal outcome by outcome, so equality alone
        clears a decision; any other list is compared field by field (``_compare``), which
        states the differences or finds none. Decisions without history share their
        outcome mapping (one per time segment and handling code): the list is built once
        per shared mapping, and kept with it so that its id is not reused meanwhile.
        """
        return self._as_recorded(outcomes)  # what the router writes (``decision_record``)

    @staticmethod
    def _compare(
        outcomes: Mapping[str, Outcome],
        recorded: Mapping[str, tuple[bool, tuple[str, ...], str | None, str | None, str | None]],
    ) -> list[str]:
        problems = []
        for name, outcome in outcomes.items():
            again = _outcome_key(outcome)
            was = recorded.get(name)
            if was != again:
                was_text = "nothing" if was is None else _describe(was)
                problems.append(f"{name}: recorded {was_text}, re-evaluated {_describe(again)}")
        return problems


def copy_problem(copy: Envelope, verified: Envelope) -> str | None:
    """Why feed ``copy`` is not a redaction of ``verified`` (an outbox copy whose signature holds).

    The signed bytes (header, section names and digests, signature) must be identical;
    each section the copy carries must match its digest; redacted ones carry no salt.
    """
    if copy.header != verified.header:
        return "header differs from the signed outbox copy"
    if copy.signature != verified.signature:
        return "signature differs from the outbox copy"
    if len(copy.sections) != len(verified.sections):
        return "section list differs from the outbox copy"
    header = copy.header
    for mine, signed in zip(copy.sections, verified.sections, strict=True):
        if mine.name != signed.name or mine.digest != signed.digest:
            return f"section {mine.name}: name or digest differs from the outbox copy"
        if mine.content is None:
            if mine.salt is not None:
                return f"section {mine.name}: redacted but carries a salt"
            continue
        if mine.salt is None:
            return f"section {mine.name}: content without a salt"
        expected = section_digest(
            header.alert_id, header.message_id, mine.name, mine.salt, mine.content
        )
        if expected != mine.digest:
            return f"section {mine.name}: content does not match its signed digest"
    return None


def _zigzag_long(value: int) -> bytes:
    """Avro's variable-length zigzag encoding of a long."""
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


_ZIGZAG: Final = tuple(_zigzag_long(value) for value in range(4096))


def _zigzag(value: int) -> bytes:
    """The zigzag encoding of a length, from a table for the usual small ones."""
    return _ZIGZAG[value] if 0 <= value < 4096 else _zigzag_long(value)


def _sections_tail(envelope: Envelope, keep: Collection[str] | None) -> bytes:
    """The Avro bytes of the sections array and signature, keeping ``keep`` (None: as they are).

    Built by the compiled ``sections_tail`` when the values have their usual types.
    """
    if type(envelope.sections) is tuple and type(envelope.signature) is bytes:
        tail = native_sections_tail(envelope.sections, envelope.signature, keep)
        if tail is not None:
            return tail
    return _sections_tail_python(envelope, keep)


def _sections_tail_python(envelope: Envelope, keep: Collection[str] | None) -> bytes:
    """``_sections_tail`` in Python only: the reference of the compiled one."""
    parts = [_zigzag(len(envelope.sections))] if envelope.sections else []
    for section in envelope.sections:
        name = section.name.encode()
        parts.append(_zigzag(len(name)) + name + section.digest)
        content = section.content
        if (
            content is None
            or section.salt is None
            or (keep is not None and section.name not in keep)
        ):
            parts.append(b"\x00\x00")
        else:
            parts.append(b"\x02" + section.salt + b"\x02" + _zigzag(len(content)) + content)
    parts.append(b"\x00")
    parts.append(_zigzag(len(envelope.signature)) + envelope.signature)
    return b"".join(parts)


def redacted_bytes(value: bytes, envelope: Envelope, keep: Collection[str]) -> bytes | None:
    """The exact record value of ``envelope`` (decoded from ``value``) redacted to ``keep``.

    Built by splicing ``value``: its header bytes are kept and the section list is
    re-encoded without the withheld contents and salts, which is what
    ``encode_envelope(redact(envelope, keep))`` writes. None when ``value`` is not laid
    out as expected (the caller then compares decoded values instead).
    """
    return _Splice.of(value, envelope).redacted(keep)


@dataclass(frozen=True, slots=True)
class _Splice:
    """A verified outbox copy ready to be redacted: its bytes, sections and header bytes."""

    value: bytes
    envelope: Envelope
    present: frozenset[str]
    head: bytes | None
    """The bytes before the section list; None when ``value`` is not laid out as expected."""

    @classmethod
    def of(
        cls,
        value: bytes,
        envelope: Envelope,
        sections_at: int | None = None,
        present: frozenset[str] | None = None,
    ) -> _Splice:
        """``value`` decoded as ``envelope``; ``sections_at`` where its section list starts.

        Without the position, the header bytes are found by encoding the section list
        and finding it at the end of ``value``. Either way a copy spliced from them
        decodes to the same header: the reader reads those bytes the same way.
        """
        if sections_at is not None:
            head: bytes | None = value[:sections_at]
        else:
            tail = _sections_tail(envelope, None)
            head = value[: len(value) - len(tail)] if value.endswith(tail) else None
        return cls(value, envelope, envelope.present_sections if present is None else present, head)

    def redacted(self, keep: Collection[str]) -> bytes | None:
        """The exact record value redacted to ``keep`` (see ``redacted_bytes``)."""
        if self.present.issubset(keep):
            return self.value
        if self.head is None:
            return None
        return self.head + _sections_tail(self.envelope, keep)


def _splice_of(source: LogRecord) -> _Splice:
    """The outbox copy in ``source`` decoded again, ready to redact (it decoded before)."""
    envelope, sections_at = decode_envelope_split(source.value)
    return _Splice.of(source.value, envelope, sections_at)


def _signature_problem(envelope: Envelope, trust: TrustStore) -> str | None:
    try:
        verify_trusted(envelope, trust)
    except BorderExchangeError as exc:
        return str(exc)
    return None


_Expected = tuple[frozenset[str], AuditEntry, bytes | None]
"""A delivery expected in a feed: the permitted sections, the decision, and the exact bytes of
the permitted copy when the outbox copy verified (a plain tuple: one is built per delivery)."""


class Replay:
    """Collects what an auditor read of one period and computes the verdict; does no I/O."""

    def __init__(
        self,
        window: Window,
        trust: TrustStore | TrustTimeline,
        agreement_sets: Mapping[str, AgreementSet],
    ) -> None:
        self.window = window
        self.trust = _timeline(trust)
        """The trust store in force at each time (``domain.trust_timeline``): each record is
        checked under the store in force when the router decided it."""
        self.reevaluator = Reevaluator(agreement_sets, self.trust)
        self._chains: dict[tuple[str, int], ChainCheck] = {}
        self._outbox: dict[tuple[str, int], dict[int, LogRecord]] = {}
        self._feeds: list[LogRecord] = []
        self._quarantine: list[LogRecord] | None = None
        self._notes: list[str] = []
        self._retained: dict[tuple[str, int], tuple[int, datetime | None]] = {}
        self._truncated: set[str] = set()
        """Origins of which a chain lost its start."""

    def add_chain(
        self,
        topic: str,
        partition: int,
        logs: Sequence[LogRecord],
        start: ChainStart | None = None,
    ) -> ChainCheck:
        """Add one audit partition's records, in offset order, and check its chain.

        ``start`` (where the partition's log begins) locates records deleted at its start.
        """
        with _cyclic_gc_paused():
            check = verify_chain(topic, partition, logs, self.trust, start)
        if start is not None and start.truncated:
            self._truncated.add(topic.removeprefix(AUDIT_PREFIX))
        self._chains[(topic, partition)] = check
        return check

    def add_outbox(self, topic: str, partition: int, logs: Iterable[LogRecord]) -> None:
        """Add the outbox records read of one partition."""
        self._outbox.setdefault((topic, partition), {}).update((log.offset, log) for log in logs)

    def add_retained(
        self, topic: str, partition: int, first_offset: int, first_time: datetime | None
    ) -> None:
        """Where a time-retained partition starts now: its first offset and that record's
        time (None when it holds nothing). Records before were deleted under retention:
        lawfully erased, not missing."""
        self._retained[(topic, partition)] = (first_offset, first_time)

    def add_feed(self, logs: Iterable[LogRecord]) -> None:
        """Add partner-feed records."""
        self._feeds.extend(logs)

    def add_quarantine(self, logs: Iterable[LogRecord]) -> None:
        """Add quarantine records (without them, quarantines are not cross-checked)."""
        if self._quarantine is None:
            self._quarantine = []
        self._quarantine.extend(logs)

    def note(self, text: str) -> None:
        """Record something the verdict assumed or could not check."""
        self._notes.append(text)

    def verdict(self) -> Verdict:
        """Check everything added and return the verdict."""
        with _cyclic_gc_paused():
            return _Verdict(self).run()


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a replay builds its (acyclic) values.

    A replay keeps every decoded record and verified copy until the verdict, so the
    collector's full passes, which grow with everything alive, took about a quarter of
    the replay's time while finding nothing to free; reference counting still frees
    everything as usual. The previous state is restored on the way out.

    A paused collector still counts the objects made meanwhile: the first one made after
    the pause would start a young-generation pass over all of them (every decoded audit
    record, about 8% of a replay). On the way out they are moved, untraversed, to the
    oldest generation (``gc.freeze`` then ``gc.unfreeze``, only when nothing else is
    frozen), where only a full pass looks at them, as at anything long-lived.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


HANDOFF_INTERVAL: Final = 0.0005
"""The switch interval (s) while the signature thread works beside the replay."""


@contextmanager
def _prompt_gil_handoffs() -> Iterator[None]:
    """Let the signature thread have the GIL within ``HANDOFF_INTERVAL`` when it asks.

    The thread needs the GIL briefly twice a batch, to take the batch and to hand back
    its answers. Under the default switch interval (5 ms) it waited up to that long each
    time for the replay's thread to let go: up to 10 ms per batch of about 25 ms of
    checks, so the thread fell behind and the replay waited for its backlog at the end
    (measured: that wait went from about 30 to 12 µs per message, the replay took 4%
    less time). The interval only
    matters when a thread asks. A shorter interval is left as it is; the previous one is
    restored on the way out.
    """
    was = sys.getswitchinterval()
    if was <= HANDOFF_INTERVAL:
        yield
        return
    sys.setswitchinterval(HANDOFF_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(was)


class _Verdict:
    """One run of the cross-checks; split out of ``Replay`` to keep each step small."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.window = replay.window
        self.trust = replay.trust
        self.stats = Stats()
        self.violations: list[Violation] = []
        self.notes: list[str] = list(replay._notes)
        self.decisions: dict[tuple[str, str], tuple[AuditEntry, bool]] = {}
        self.expected: dict[tuple[str, str, str], _Expected] = {}
        self.verified: dict[tuple[str, str], LogRecord] = {}
        """Per message: the outbox record whose copy is taken as verified (its bytes only)."""
        self.by_source: dict[bytes, tuple[str, str]] = {}
        self.quarantine_expected: dict[tuple[str, int, int], AuditEntry] = {}
        self.quarantine_audited: set[tuple[str, int, int]] = set()
        self.origins: set[str] = set()
        self.checks: SignatureChecks[tuple[str, str, LogRecord]]

    def run(self) -> Verdict:
        chains = []
        with _prompt_gil_handoffs(), signature_checks() as self.checks:
            for (topic, partition), check in sorted(self.replay._chains.items()):
                self.violations.extend(check.violations)
                chains.append(check.summary)
                self.stats.audit_records += len(check.entries)
                self.stats.checkpoints += check.summary.checkpoints
                self._chain(topic, partition, check)
            self._settle_signatures()
        self._feeds()
        self._quarantine()
        self.violations.sort(key=lambda v: (v.topic, v.partition, v.offset, v.code.value))
        return Verdict(
            self.window, tuple(self.violations), self.stats, tuple(chains), tuple(self.notes)
        )

    def _add(self, code: ViolationCode, log: LogRecord, detail: str) -> None:
        self.violations.append(Violation(code, log.topic, log.partition, log.offset, detail))

    def _chain(self, topic: str, partition: int, check: ChainCheck) -> None:
        origin = topic.removeprefix(AUDIT_PREFIX)
        self.origins.add(origin)
        outbox_topic = f"bx.{origin}.outbox"
        outbox = self.replay._outbox.get((outbox_topic, partition))
        audited: dict[int, list[AuditEntry]] = defaultdict(list)
        in_window: list[AuditEntry] = []
        for entry in check.entries:
            kind = entry.kind
            if kind == AuditKind.CHECKPOINT:
                continue
            offset = entry.record.get("source_offset")
            if offset is None or kind not in (AuditKind.DECISION, AuditKind.QUARANTINE):
                self._add(
                    ViolationCode.AUDIT_MALFORMED,
                    entry.log,
                    f"a {kind} record without a source offset",
                )
                continue
            audited[int(offset)].append(entry)
            if kind == AuditKind.QUARANTINE:
                self.quarantine_audited.add((outbox_topic, partition, int(offset)))
            if entry.recorded_at in self.window:
                in_window.append(entry)
        for entries in audited.values():
            for extra in entries[1:]:
                if extra.recorded_at in self.window or entries[0].recorded_at in self.window:
                    self._add(
                        ViolationCode.DUPLICATE_AUDIT,
                        extra.log,
                        f"outbox offset {extra.record['source_offset']} is already audited "
                        f"at offset {entries[0].log.offset}",
                    )
        if outbox is None:
            if in_window:
                self.notes.append(f"outbox {outbox_topic}/{partition} not replayed")
        else:
            self._coverage(outbox_topic, partition, outbox, audited, in_window)
        self._decisions(outbox_topic, partition, outbox, check, set(map(id, in_window)))

    def _coverage(
        self,
        outbox_topic: str,
        partition: int,
        outbox: Mapping[int, LogRecord],
        audited: Mapping[int, list[AuditEntry]],
        in_window: Sequence[AuditEntry],
    ) -> None:
        self.stats.outbox_records += sum(
            1 for log in outbox.values() if log.offset in audited or log.timestamp in self.window
        )
        offsets = [int(e.record["source_offset"]) for e in in_window]
        low, high = (min(offsets), max(offsets)) if offsets else (None, None)
        for offset, log in sorted(outbox.items()):
            if offset in audited:
                continue
            if (low is not None and high is not None and low <= offset <= high) or (
                log.timestamp in self.window
            ):
                self._add(
                    ViolationCode.MISSING_AUDIT,
                    log,
                    f"no DECISION or QUARANTINE record of {outbox_topic}/{partition} "
                    f"offset {offset}",
                )
        first = self.replay._retained.get((outbox_topic, partition), (0, None))[0]
        for entry in in_window:
            offset = int(entry.record["source_offset"])
            if offset not in outbox and offset < first:
                self.stats.erased_outbox += 1
            elif offset not in outbox:
                self._add(
                    ViolationCode.AUDIT_WITHOUT_SOURCE,
                    entry.log,
                    f"audits {outbox_topic}/{partition} offset {offset}, "
                    "which holds no committed record",
                )

    def _decisions(
        self,
        outbox_topic: str,
        partition: int,
        outbox: Mapping[int, LogRecord] | None,
        check: ChainCheck,
        in_window: Collection[int],
    ) -> None:
        owner = parse_outbox_topic(outbox_topic) or ""
        history: dict[str, set[str]] = defaultdict(set)
        complete = check.summary.from_genesis
        if not complete and in_window:
            self.notes.append(
                f"chain {check.summary.chain} replayed from seq {check.summary.first_seq}: "
                "earlier recipients before it are taken as recorded"
            )
        for entry in check.entries:
            record = entry.record
            kind = entry.kind
            if kind == AuditKind.DECISION:
                alert_id = str(record.get("alert_id"))
                seen = history[alert_id]
                if id(entry) in in_window:
                    self._decision(entry, outbox_topic, partition, owner, outbox, seen, complete)
                else:
                    key = (str(record.get("origin")), str(record.get("message_id")))
                    self.decisions.setdefault(key, (entry, False))
                for outcome in record.get("outcomes") or ():
                    if outcome["delivered"]:
                        seen.add(str(outcome["participant"]))
            elif kind == AuditKind.QUARANTINE and id(entry) in in_window:
                self.stats.quarantined += 1
                self.stats.quarantine_reasons[owner][str(record.get("quarantine_reason"))] += 1
                offset = int(record["source_offset"])
                self.quarantine_expected[(outbox_topic, partition, offset)] = entry

    def _decision(
        self,
        entry: AuditEntry,
        outbox_topic: str,
        partition: int,
        owner: str,
        outbox: Mapping[int, LogRecord] | None,
        seen: set[str],
        complete: bool,
    ) -> None:
        record = entry.record
        self.stats.decisions += 1
        origin = str(record.get("origin"))
        message_id = str(record.get("message_id"))
        message = (origin, message_id)
        self.decisions[message] = (entry, True)
        digest = str(record.get("agreement_set"))
        label, count = self.stats.agreement_sets.get(
            digest, (str(record.get("agreement_label")), 0)
        )
        self.stats.agreement_sets[digest] = (label, count + 1)
        if origin != owner:
            self._add(
                ViolationCode.ORIGIN_MISMATCH,
                entry.log,
                f"message {message_id} claims origin {origin} in the outbox of {owner} "
                "and was decided instead of quarantined",
            )
        source = None if outbox is None else outbox.get(int(record["source_offset"]))
        splice = None
        if source is not None:
            splice = self._outbox_copy(entry, source, origin, message_id)
            self.by_source[f"{outbox_topic}/{partition}/{source.offset}".encode()] = message
        verified = self.verified.get(message)
        if verified is None:
            splice = None
        elif splice is None or verified is not source:  # verified by an earlier decision
            splice = _splice_of(verified)
        try:
            problems = self.replay.reevaluator.differences(record)
        except (ValueError, KeyError, TypeError, BorderExchangeError) as exc:
            self._add(ViolationCode.AUDIT_MALFORMED, entry.log, f"cannot re-evaluate: {exc}")
            problems = []
        if problems is None:
            self._add(
                ViolationCode.AGREEMENT_SET_UNKNOWN,
                entry.log,
                f"agreement set {digest} ({record.get('agreement_label')}) cannot be retrieved",
            )
        elif problems:
            self._add(ViolationCode.DECISION_MISMATCH, entry.log, "; ".join(problems))
        unsigned = self.replay.reevaluator.unsigned_deliveries(record)
        if unsigned:
            self._add(ViolationCode.AGREEMENT_NOT_SIGNED, entry.log, "; ".join(unsigned))
        recorded = set(record.get("earlier_recipients") or ())
        if (complete and recorded != seen) or not seen <= recorded:
            self._add(
                ViolationCode.HISTORY_MISMATCH,
                entry.log,
                f"alert {record.get('alert_id')}: recorded earlier recipients "
                f"{sorted(recorded)}, the chain shows {sorted(seen)}",
            )
        alert_type = str(record.get("alert_type"))
        for outcome in record.get("outcomes") or ():
            recipient = str(outcome["participant"])
            if recipient == origin:
                continue
            if outcome["delivered"]:
                self.stats.delivered[(origin, recipient)][alert_type] += 1
                sections = frozenset(outcome["sections"])
                value = None if splice is None else splice.redacted(sections)
                self.expected[(recipient, origin, message_id)] = (sections, entry, value)
            else:
                self.stats.denied[(origin, recipient)][str(outcome["reason"])] += 1

    def _outbox_copy(
        self, entry: AuditEntry, source: LogRecord, origin: str, message_id: str
    ) -> _Splice | None:
        """Check the outbox copy a decision names; the copy ready to redact, when it is taken.

        Only the bytes are kept (``verified``): the decoded copy is needed again only on
        the rare paths (a failed signature, a feed copy that is not byte-identical), where
        it is decoded again.
        """
        try:
            envelope, sections_at = decode_envelope_split(source.value)
        except DecodeError as exc:
            self._add(
                ViolationCode.AUDIT_MISMATCH,
                source,
                f"decided at audit offset {entry.log.offset} but is no envelope: {exc}",
            )
            return None
        header = envelope.header
        present = envelope.present_sections
        differing = _differing_fields(entry.record, header, present)
        if differing:
            self._add(
                ViolationCode.AUDIT_MISMATCH,
                entry.log,
                f"describes another message than outbox offset {source.offset}: "
                + ", ".join(differing),
            )
        self.stats.signatures_verified += 1
        try:
            store = self.trust.at(entry.recorded_at)  # in force when it was decided
            key = store.key_for(header.origin, header.key_id, header.issued_at)
            signed = signed_message(envelope, key)
        except BorderExchangeError as exc:
            self._add(ViolationCode.SIGNATURE_INVALID, source, f"outbox copy: {exc}")
            return None
        # Taken as verified until the signature check, done on the side, says otherwise
        # (``_settle_signatures``, before any feed copy is compared with it).
        self.verified[(origin, message_id)] = source
        self.checks.add((origin, message_id, source), signed, key.raw)
        return _Splice.of(source.value, envelope, sections_at, present)

    def _settle_signatures(self) -> None:
        """Withdraw every outbox copy whose signature failed, and what was expected of it."""
        failed = set()
        for origin, message_id, source in self.checks.failed():
            error = bad_signature(decode_envelope(source.value).header)
            self._add(ViolationCode.SIGNATURE_INVALID, source, f"outbox copy: {error}")
            if self.verified.get((origin, message_id)) is source:
                del self.verified[(origin, message_id)]
                failed.add((origin, message_id))
        if failed:
            for key, (sections, entry, value) in self.expected.items():
                if key[1:] in failed and value is not None:
                    self.expected[key] = (sections, entry, None)

    def _feeds(self) -> None:
        matched: dict[tuple[str, str, str], LogRecord] = {}
        disclosed: set[tuple[str, str, str]] = set()
        """Deliveries made, but only in a copy carrying withheld sections."""
        topics: dict[str, tuple[str, str] | None] = {}
        for log in self.replay._feeds:
            try:
                parsed = topics[log.topic]
            except KeyError:
                parsed = topics[log.topic] = parse_feed_topic(log.topic)
            if parsed is None:
                continue
            recipient, origin = parsed
            self.stats.feed_records += 1
            if self._permitted_copy(log, recipient, origin, matched):
                continue
            try:
                envelope = decode_envelope(log.value)
            except DecodeError as exc:
                if log.timestamp in self.window:
                    self._add(ViolationCode.FEED_UNAUTHORISED, log, f"not an envelope: {exc}")
                continue
            message_id = envelope.header.message_id
            found = self.decisions.get((origin, message_id))
            if found is None:
                if log.timestamp in self.window:
                    self._add(
                        ViolationCode.FEED_UNAUTHORISED,
                        log,
                        f"message {message_id} of {origin}: no decision of the router delivers it"
                        + (
                            f" (audit records of {origin} were deleted, see AUDIT_DELETED: "
                            "its decision may have been among them)"
                            if origin in self.replay._truncated
                            else ""
                        ),
                    )
                continue
            entry, inside = found
            if not inside:
                continue
            key = (recipient, origin, message_id)
            expected = self.expected.get(key)
            if expected is None:
                self._add(
                    ViolationCode.FEED_UNAUTHORISED,
                    log,
                    f"message {message_id} of {origin}: the decision at "
                    f"{entry.log.topic}/{entry.log.partition}/{entry.log.offset} "
                    f"does not deliver it to {recipient}",
                )
                continue
            present = envelope.present_sections
            withheld = present - expected[0]
            if withheld:
                # A disclosure, not a second delivery: the permitted copy may still be there.
                self._add(
                    ViolationCode.FEED_SECTION_DISCLOSED,
                    log,
                    f"message {message_id} of {origin} carries section(s) "
                    f"{', '.join(sorted(withheld))} that the decision at "
                    f"{entry.log.topic}/{entry.log.partition}/{entry.log.offset} "
                    f"withheld from {recipient}",
                )
                disclosed.add(key)
                continue
            if key in matched:
                self._add(
                    ViolationCode.FEED_DUPLICATE,
                    log,
                    f"message {message_id} already delivered at offset {matched[key].offset}",
                )
                continue
            matched[key] = log
            if present != expected[0]:
                self._add(
                    ViolationCode.FEED_SECTIONS_MISMATCH,
                    log,
                    f"message {message_id} carries [{', '.join(sorted(present))}], "
                    f"permitted [{', '.join(sorted(expected[0]))}]",
                )
            self._feed_signature(log, envelope, origin, message_id)
        for key, (_, entry, _) in self.expected.items():
            if key not in matched and key not in disclosed:
                recipient, origin, message_id = key
                if self._erased_copy(f"bx.{recipient}.from.{origin}", entry):
                    self.stats.erased_feed += 1
                    continue
                self._add(
                    ViolationCode.FEED_MISSING,
                    entry.log,
                    f"message {message_id} delivered to {recipient} has no record in "
                    f"bx.{recipient}.from.{origin}",
                )

    def _erased_copy(self, feed: str, entry: AuditEntry) -> bool:
        """Whether the copy ``entry`` delivered to ``feed`` was deleted under retention: its
        partition (the alert id's, as the router chose it) now starts after the decision."""
        partitions = sum(1 for topic, _ in self.replay._retained if topic == feed)
        hashed = key_hash(str(entry.record.get("alert_id")).encode())
        if not partitions or hashed is None:
            return False
        first_offset, first_time = self.replay._retained[(feed, hashed % partitions)]
        if first_time is None:
            return first_offset > 0  # emptied by retention
        return entry.recorded_at < first_time

    def _permitted_copy(
        self,
        log: LogRecord,
        recipient: str,
        origin: str,
        matched: dict[tuple[str, str, str], LogRecord],
    ) -> bool:
        """Whether ``log`` is byte for byte the permitted copy of a verified message.

        The ``bx-source`` header only says where to look; the byte comparison decides.
        """
        hint = log.header("bx-source")
        found = None if hint is None else self.by_source.get(hint)
        if found is None or found[0] != origin:
            return False
        key = (recipient, origin, found[1])
        expected = self.expected.get(key)
        if expected is None or expected[2] is None or key in matched:
            return False
        if log.value != expected[2]:
            return False
        matched[key] = log
        self.stats.copies_checked += 1
        return True

    def _feed_signature(
        self, log: LogRecord, envelope: Envelope, origin: str, message_id: str
    ) -> None:
        verified = self.verified.get((origin, message_id))
        if verified is not None:
            self.stats.copies_checked += 1
            problem = copy_problem(envelope, decode_envelope(verified.value))
        else:
            self.stats.signatures_verified += 1
            problem = _signature_problem(envelope, self.trust.at(log.timestamp))
        if problem is not None:
            self._add(ViolationCode.SIGNATURE_INVALID, log, f"feed copy: {problem}")

    def _quarantined_bytes(
        self, log: LogRecord, record: Mapping[str, Any], source: tuple[str, int, int]
    ) -> None:
        """A quarantine record keeps a prefix of the value: its length and hash must be
        those of the outbox record it names (when that was replayed)."""
        digest = record.get("original_value_sha256")
        original = self.replay._outbox.get(source[:2], {}).get(source[2])
        if digest is None or original is None:
            return
        value = original.value or b""
        if hashlib.sha256(value).digest() != digest or len(value) != record.get(
            "original_value_length"
        ):
            self._add(
                ViolationCode.QUARANTINE_MISMATCH,
                log,
                f"quarantine of {source[0]}/{source[1]} offset {source[2]} names other bytes "
                f"than the outbox record ({record.get('original_value_length')} bytes recorded, "
                f"{len(value)} in the outbox)",
            )

    def _quarantine(self) -> None:
        logs = self.replay._quarantine
        if logs is None:
            if self.quarantine_expected:
                self.notes.append("quarantine topic not replayed")
            return
        found: set[tuple[str, int, int]] = set()
        for log in logs:
            try:
                schema, record = decode_record(log.value)
            except DecodeError as exc:
                self._add(ViolationCode.QUARANTINE_UNAUDITED, log, f"malformed: {exc}")
                continue
            if schema != "bx.QuarantineRecord":
                self._add(ViolationCode.QUARANTINE_UNAUDITED, log, f"a {schema} record")
                continue
            source = (
                str(record["source_topic"]),
                int(record["source_partition"]),
                int(record["source_offset"]),
            )
            found.add(source)
            self._quarantined_bytes(log, record, source)
            owner = parse_outbox_topic(source[0])
            if (
                owner in self.origins
                and source not in self.quarantine_audited
                and log.timestamp in self.window
            ):
                self._add(
                    ViolationCode.QUARANTINE_UNAUDITED,
                    log,
                    f"quarantine of {source[0]}/{source[1]} offset {source[2]} "
                    "has no QUARANTINE audit record",
                )
        for source, entry in self.quarantine_expected.items():
            if source not in found:
                self._add(
                    ViolationCode.QUARANTINE_MISSING,
                    entry.log,
                    f"quarantine of {source[0]}/{source[1]} offset {source[2]} "
                    "is not in the quarantine topic",
                )


def disclosures(entries: Iterable[AuditEntry], window: Window, origin: str) -> list[Disclosure]:
    """Every delivery of ``origin``'s alerts decided in ``window``: to whom, what, under what."""
    found = []
    for entry in entries:
        record = entry.record
        if entry.kind != AuditKind.DECISION or entry.recorded_at not in window:
            continue
        if record.get("origin") != origin:
            continue
        for outcome in record.get("outcomes") or ():
            if not outcome["delivered"] or outcome["participant"] == origin:
                continue
            found.append(
                Disclosure(
                    message_id=str(record["message_id"]),
                    alert_id=str(record["alert_id"]),
                    version=int(record["version"]),
                    alert_type=str(record["alert_type"]),
                    operation=str(record["operation"]),
                    recipient=str(outcome["participant"]),
                    sections=tuple(outcome["sections"]),
                    agreement_id=outcome["agreement_id"],
                    basis=outcome["basis"],
                    agreement_set=str(record["agreement_set"]),
                    agreement_label=str(record["agreement_label"]),
                    recorded_at=entry.recorded_at,
                    audit_topic=entry.log.topic,
                    audit_partition=entry.log.partition,
                    audit_offset=entry.log.offset,
                )
            )
    return found
