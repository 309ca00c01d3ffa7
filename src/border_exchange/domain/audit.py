"""The audit trail as a hash chain: one chain per audited outbox partition.

Every record names the chain hash of its predecessor; the chain hash of a record is
SHA-256 over a domain tag and the record's single-object bytes. From time to time
the router appends a CHECKPOINT whose Ed25519 signature (by a hub key) covers the
chain id, its position and the head hash, so that a chain cut short or rewritten
after the checkpoint is detected by anyone holding the trust store.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from border_exchange.domain.audit_writer import write_audit_body
from border_exchange.domain.encoding import encode_record
from border_exchange.domain.envelope import Header
from border_exchange.domain.policy import Decision, Deliver, Outcome
from border_exchange.domain.schemas import SINGLE_OBJECT_MAGIC, registry

AUDIT_SCHEMA: Final = "bx.AuditRecord"
QUARANTINE_SCHEMA: Final = "bx.QuarantineRecord"
CHAIN_TAG: Final = b"border-exchange/audit-chain/v1\x00"
HEAD_TAG: Final = b"border-exchange/audit-head/v1\x00"
GENESIS: Final = bytes(32)


class AuditKind(StrEnum):
    """What an audit record records."""

    DECISION = "DECISION"
    QUARANTINE = "QUARANTINE"
    CHECKPOINT = "CHECKPOINT"
    HIT_REPORT = "HIT_REPORT"
    """A hit report delivered to the alert's origin (``domain.hit_routing``)."""
    HIT_ACK = "HIT_ACK"
    """An acknowledgement of a hit report delivered to the reporting service."""


def chain_id(topic: str, partition: int) -> str:
    """The id of the chain auditing outbox ``topic`` partition ``partition``."""
    return f"{topic}/{partition}"


def chain_hash(record_bytes: bytes) -> bytes:
    """The chain hash of one encoded audit record."""
    return hashlib.sha256(CHAIN_TAG + record_bytes).digest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a chain stands: the next position and the hash the next record must name."""

    chain: str
    seq: int = 0
    head: bytes = GENESIS
    since_checkpoint: int = 0

    def after(self, record_bytes: bytes, kind: AuditKind) -> ChainHead:
        """The head once ``record_bytes`` is appended."""
        return self.following(self.seq, record_bytes, kind)

    def following(self, seq: int, record_bytes: bytes, kind: AuditKind) -> ChainHead:
        """The head once ``record_bytes``, recorded at position ``seq``, is appended.

        On start the router reads its chain back and goes on from the last record's
        own position and hash: counting the records read instead would repeat
        positions once records at the chain's start were deleted.
        """
        since = 0 if kind is AuditKind.CHECKPOINT else self.since_checkpoint + 1
        return ChainHead(self.chain, seq + 1, chain_hash(record_bytes), since)


def head_signing_input(chain: str, seq: int, head: bytes) -> bytes:
    """What a checkpoint signs: tag, chain id, the checkpoint's position and the head before it."""
    chain_bytes = chain.encode()
    return (
        HEAD_TAG + struct.pack(">I", len(chain_bytes)) + chain_bytes + struct.pack(">q", seq) + head
    )


def chain_fields(head: ChainHead, kind: AuditKind, recorded_at: datetime) -> dict[str, Any]:
    """The fields every audit record begins with: its place in the chain, its kind, its time."""
    return {
        "chain": head.chain,
        "seq": head.seq,
        "prev_hash": head.head,
        "kind": kind.value,
        "recorded_at": recorded_at,
    }


def header_fields(header: Header) -> dict[str, Any]:
    """The header fields an audit record repeats, as the record holds them."""
    return {
        "message_id": header.message_id,
        "alert_id": header.alert_id,
        "version": header.version,
        "origin": header.origin,
        "alert_type": header.alert_type.value,
        "operation": header.operation.value,
        "handling_code": header.handling_code.value,
        "action_on_hit": header.action_on_hit.value,
        "issued_at": header.issued_at,
        "expires_at": header.expires_at,
    }


def outcome_entries(outcomes: Mapping[str, Outcome]) -> list[dict[str, Any]]:
    """The ``outcomes`` field of a decision's audit record: one entry per participant."""
    entries = []
    for participant, outcome in outcomes.items():
        if isinstance(outcome, Deliver):
            entries.append(
                {
                    "participant": participant,
                    "delivered": True,
                    "sections": list(outcome.sections),
                    "reason": None,
                    "agreement_id": outcome.agreement_id,
                    "basis": outcome.basis.value,
                }
            )
        else:
            entries.append(
                {
                    "participant": participant,
                    "delivered": False,
                    "sections": [],
                    "reason": outcome.reason.value,
                    "agreement_id": outcome.agreement_id,
                    "basis": None,
                }
            )
    return entries


def decision_record(
    head: ChainHead,
    recorded_at: datetime,
    source_offset: int,
    header: Header,
    present_sections: Collection[str],
    decision: Decision,
    earlier_recipients: Collection[str],
    entries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The audit record of a routing decision.

    ``entries`` is ``outcome_entries(decision.outcomes)`` when the caller has it already
    (the router builds it once per shared outcome mapping); it is only read.
    """
    return {
        **chain_fields(head, AuditKind.DECISION, recorded_at),
        **header_fields(header),
        "source_offset": source_offset,
        "sections": sorted(present_sections),
        "agreement_set": decision.agreement_set,
        "agreement_label": decision.label,
        "earlier_recipients": sorted(earlier_recipients),
        "outcomes": outcome_entries(decision.outcomes) if entries is None else entries,
    }


def quarantine_audit_record(
    head: ChainHead,
    recorded_at: datetime,
    source_offset: int,
    reason: str,
    detail: str,
    header: Header | None,
) -> dict[str, Any]:
    """The audit record of a refused outbox record."""
    return {
        **chain_fields(head, AuditKind.QUARANTINE, recorded_at),
        **(header_fields(header) if header is not None else {}),
        "source_offset": source_offset,
        "quarantine_reason": reason,
        "quarantine_detail": detail,
    }


def checkpoint_record(
    head: ChainHead, recorded_at: datetime, key_id: str, signature: bytes
) -> dict[str, Any]:
    """A checkpoint: the hub's signature over ``head_signing_input(chain, seq, prev_hash)``."""
    return {
        **chain_fields(head, AuditKind.CHECKPOINT, recorded_at),
        "checkpoint_key_id": key_id,
        "checkpoint_signature": signature,
    }


DIRECT_WRITER_FINGERPRINT: Final = bytes.fromhex("9eba8176729c68b8")
"""The schema version ``audit_writer`` implements; another version uses the generic writer."""


def encode_audit(record: Mapping[str, Any]) -> bytes:
    """Single-object bytes of an audit record."""
    schema = registry().schema(AUDIT_SCHEMA)
    if schema.fingerprint == DIRECT_WRITER_FINGERPRINT:
        return SINGLE_OBJECT_MAGIC + schema.fingerprint + write_audit_body(record)
    return encode_record(AUDIT_SCHEMA, record)
