"""The values of an audit replay: the records it reads; the violations, counts and verdict found."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from border_exchange.domain.audit import chain_id
from border_exchange.domain.times import iso

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
    HIT_COPY_MISSING = "HIT_COPY_MISSING"
    """A delivered hit report or acknowledgement has no record in its recipient's hit topic."""
    HIT_COPY_UNAUTHORISED = "HIT_COPY_UNAUTHORISED"
    """A record in a hit topic is no copy of a report or acknowledgement delivered there."""
    HIT_COPY_DUPLICATE = "HIT_COPY_DUPLICATE"
    """A hit report or acknowledgement appears more than once in its recipient's hit topic."""
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


def _fields(value: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of dataclass ``value`` by name, in their order, but those to ``leave_out``."""
    return {f.name: getattr(value, f.name) for f in fields(value) if f.name not in leave_out}


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
        return _fields(self) | {"code": self.code.value}


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
        """The disclosure as a JSON object; its audit record's place as one ``audit`` path."""
        return _fields(self, leave_out=("audit_topic", "audit_partition", "audit_offset")) | {
            "sections": list(self.sections),
            "recorded_at": iso(self.recorded_at),
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
    hit_reports: int = 0
    """Hit reports delivered to an alert's origin (``HIT_REPORT`` records) in the window."""
    hit_acks: int = 0
    """Acknowledgements delivered back to a reporting service (``HIT_ACK``) in the window."""
    hit_copies_checked: int = 0
    """Copies in the hit topics matched to the delivery that wrote them."""
    erased_outbox: int = 0
    """Outbox records decided in the window and since deleted by the outbox's retention."""
    erased_feed: int = 0
    """Feed and hit-topic copies delivered in the window and since deleted by their topic's
    retention."""
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


def audit_chain_of(audit_topic: str, partition: int) -> str:
    """The chain id audited by partition ``partition`` of audit topic ``audit_topic``."""
    return chain_id(f"bx.{audit_topic.removeprefix(AUDIT_PREFIX)}.outbox", partition)
