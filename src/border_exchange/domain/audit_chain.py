"""One audit partition's hash chain: decode its records, check they link, locate every break."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError

from border_exchange.domain.audit import (
    AUDIT_SCHEMA,
    GENESIS,
    AuditKind,
    chain_hash,
    head_signing_input,
)
from border_exchange.domain.audit_gap import ChainStart
from border_exchange.domain.audit_reader import AUDIT_FINGERPRINT, read_audit
from border_exchange.domain.audit_values import (
    AuditEntry,
    ChainSummary,
    LogRecord,
    Violation,
    ViolationCode,
    audit_chain_of,
)
from border_exchange.domain.encoding import PREFIX_SIZE, decode_record
from border_exchange.domain.schemas import SINGLE_OBJECT_MAGIC as MAGIC
from border_exchange.domain.trust import HUB, TrustStore
from border_exchange.domain.trust_timeline import TrustTimeline, as_timeline
from border_exchange.errors import DecodeError, KeyNotValidError


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

    The first record replayed anchors the chain; when it is not seq 0 its predecessor
    is taken as recorded. A break is classified by looking ahead: if a later record
    names the expected predecessor, the records between were inserted (or, when that
    later record carries the expected position and the ones between come after it,
    moved); otherwise the expected position is missing (deleted) or, when the position
    is right but the hash is not, the predecessor was altered. ``start`` says where the
    partition's log begins and its first record's position: records deleted at the
    chain's start are located there.
    """
    trust = as_timeline(trust)  # each checkpoint under the store in force when written
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
        offsets = ", ".join(str(e.log.offset) for e in between)
        if successor.seq == expected and all(e.seq > expected for e in between):
            moved = [*order[:index], successor, *between, *order[resume + 1 :]]
            return (
                _at(
                    entry,
                    ViolationCode.CHAIN_BROKEN,
                    f"reordered: seq {expected} is at offset {successor.log.offset}, "
                    f"after the later record(s) at offset(s) {offsets}",
                ),
                (moved, index, previous),
            )
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
