"""The auditor: reads a period of the audit trail, outboxes, partner feeds and quarantine, and
hands them to the pure verifier (``domain.audit_verdict``).

Times become offsets with ``offsets_for_times``; everything is read ``read_committed``
with the auditor's own principal. Audit chains are read from ``start - slack`` to
``end + grace`` so that feed records near the edges find their decision; the outbox
range of each chain spans every offset its audit records in the window name, and
every outbox record stamped inside the window.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import structlog
from aiokafka.errors import KafkaError as AIOKafkaError

from border_exchange.adapters.agreement_files import AgreementHistory
from border_exchange.adapters.kafka_clients import AIOKAFKA, Consumer, KafkaClients, TopicPartition
from border_exchange.adapters.kafka_settings import KafkaSettings, consumer_size_kwargs
from border_exchange.domain.agreements import AgreementSet, parse_agreement_set
from border_exchange.domain.audit import AuditKind
from border_exchange.domain.audit_chain import decode_audit, verify_chain
from border_exchange.domain.audit_gap import ChainStart
from border_exchange.domain.audit_trust import store_timeline, trust_violations
from border_exchange.domain.audit_values import (
    AUDIT_PREFIX,
    AuditEntry,
    Disclosure,
    LogRecord,
    Verdict,
    Window,
    audit_chain_of,
)
from border_exchange.domain.audit_verdict import Replay, disclosures
from border_exchange.domain.naming import (
    AGREEMENTS_TOPIC,
    QUARANTINE_TOPIC,
    audit_topic,
    hits_topic,
    outbox_topic,
    parse_feed_topic,
)
from border_exchange.domain.times import iso
from border_exchange.domain.trust import TrustStore
from border_exchange.domain.trust_governance import GovernedStore
from border_exchange.domain.trust_timeline import TrustTimeline
from border_exchange.errors import AuditError, BorderExchangeError, KafkaError

log = structlog.get_logger(__name__)


@dataclass
class Progress:
    """A progress line on stderr every ``every`` seconds while records are read and checked."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    every: float = 2.0
    records: int = 0
    started: float = field(default_factory=time.monotonic)
    _last: float = 0.0

    def add(self, count: int, where: str) -> None:
        """Count ``count`` more records read from ``where``; print when it is time."""
        self.records += count
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            rate = self.records / max(now - self.started, 1e-9)
            print(
                f"audit: {self.records:,} records read ({rate:,.0f}/s), at {where}",
                file=self.stream,
                flush=True,
            )


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay: the window, optionally one participant, and the edges around it."""

    window: Window
    participant: str | None = None
    slack: timedelta = timedelta(minutes=5)
    """How far before the window feeds and chains are read, to match records at its edge."""
    grace: timedelta = timedelta(minutes=5)
    """How far after the window the router may still have written a decision of it."""


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _log(record: Any) -> LogRecord:
    return LogRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        value=record.value or b"",
        key=record.key,
        headers=tuple((str(k), bytes(v)) for k, v in (record.headers or ())),
    )


class KafkaReader:
    """Reads committed records of partitions between offsets, one consumer, no group."""

    def __init__(
        self,
        settings: KafkaSettings,
        progress: Progress | None = None,
        clients: KafkaClients = AIOKAFKA,
    ) -> None:
        self.settings = settings
        self.progress = progress or Progress()
        self.clients = clients
        self._consumer: Consumer | None = None
        self._cluster: Any = None

    async def __aenter__(self) -> KafkaReader:
        self._consumer = self.clients.consumer(
            **self.settings.client_kwargs(),
            **consumer_size_kwargs(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await self._consumer.start()
        except AIOKafkaError as exc:
            raise KafkaError(
                f"cannot connect to Kafka at {self.settings.bootstrap}: {exc}"
            ) from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def consumer(self) -> Consumer:
        """The open consumer."""
        if self._consumer is None:
            raise AuditError("the reader is not open")
        return self._consumer

    async def topics(self) -> set[str]:
        """Every topic this principal may describe (and their partitions, for ``partitions``)."""
        # The consumer's own ``topics()`` fetches this too but keeps the partitions to itself.
        self._cluster = await self.consumer._client.fetch_all_metadata()
        return set(self._cluster.topics())

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The partitions of ``topic``."""
        if self._cluster is None or self._cluster.partitions_for_topic(topic) is None:
            await self.topics()
        found = self._cluster.partitions_for_topic(topic) if self._cluster is not None else None
        return [TopicPartition(topic, p) for p in sorted(found or ())]

    async def offset_at(self, tp: TopicPartition, moment: datetime) -> int:
        """The first offset stamped at or after ``moment``, else the end of the partition."""
        found = await self.consumer.offsets_for_times({tp: _millis(moment)})
        hit = found.get(tp)
        if hit is not None:
            return int(hit.offset)
        return await self.end(tp)

    async def end(self, tp: TopicPartition) -> int:
        """The end of ``tp`` as a read_committed reader sees it (the last stable offset)."""
        return int((await self.consumer.end_offsets([tp]))[tp])

    async def read(self, tp: TopicPartition, start: int, end: int) -> list[LogRecord]:
        """The committed records of ``tp`` with ``start <= offset < end``."""
        if start >= end:
            return []
        consumer = self.consumer
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[LogRecord] = []
        idle = 0
        try:
            while await consumer.position(tp) < end and idle < 5:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                got = [r for r in batch.get(tp, []) if r.offset < end]
                idle = 0 if got else idle + 1
                records.extend(_log(r) for r in got)
                self.progress.add(len(got), f"{tp.topic}/{tp.partition}")
        finally:
            # An assigned partition keeps a fetch long-polling on the connection, and the
            # broker answers each connection's requests in order: every offset lookup
            # would wait behind it (about a second per partition of a replay).
            consumer.unsubscribe()
        return records

    async def retained(self, tp: TopicPartition) -> tuple[int, datetime | None]:
        """Where ``tp`` starts now (retention may have deleted what was before), and the
        time of its first committed record (None when it holds none)."""
        first = int((await self.consumer.beginning_offsets([tp]))[tp])
        end = await self.end(tp)
        records = await self.read(tp, first, min(end, first + 100))
        return first, (records[0].timestamp if records else None)

    async def chain_start(self, tp: TopicPartition) -> ChainStart:
        """Where audit partition ``tp`` begins: its log start offset and first record's seq."""
        start = int((await self.consumer.beginning_offsets([tp]))[tp])
        end = await self.end(tp)
        first_seq = None
        at = start
        while first_seq is None and at < end:
            # Transaction markers and aborted records take offsets: read a few at a time.
            for log in await self.read(tp, at, min(end, at + 16)):
                entry = decode_audit(log)
                if isinstance(entry, AuditEntry):  # a malformed one is reported as such
                    first_seq = entry.seq
                    break
            at += 16
        return ChainStart(audit_chain_of(tp.topic, tp.partition), start, first_seq)

    async def read_between(
        self, tp: TopicPartition, start: datetime, end: datetime
    ) -> list[LogRecord]:
        """The committed records of ``tp`` stamped from ``start`` to about ``end``."""
        first = await self.offset_at(tp, start)
        last = await self.offset_at(tp, end)
        return await self.read(tp, first, last)


async def agreement_records(reader: KafkaReader, topics: Iterable[str]) -> list[LogRecord]:
    """Every record of the agreements topic (each set the router published, with the trust
    store it routed under)."""
    if AGREEMENTS_TOPIC not in set(topics):
        return []
    records: list[LogRecord] = []
    for tp in await reader.partitions(AGREEMENTS_TOPIC):
        records.extend(await reader.read(tp, 0, await reader.end(tp)))
    return records


async def load_agreement_sets(
    reader: KafkaReader, history: AgreementHistory | None, topics: Iterable[str]
) -> dict[str, AgreementSet]:
    """Every agreement set published to the agreements topic and in ``history``, by digest."""
    sets: dict[str, AgreementSet] = {}
    for record in await agreement_records(reader, topics):
        try:
            aset = parse_agreement_set(record.value.decode("utf-8"))
        except (BorderExchangeError, UnicodeDecodeError) as exc:
            log.warning("audit.agreement_set_unreadable", offset=record.offset, error=str(exc))
            continue
        if record.key is not None and record.key.decode(errors="replace") != aset.digest:
            log.warning("audit.agreement_set_digest_mismatch", offset=record.offset)
            continue
        sets[aset.digest] = aset
    if history is not None:
        for digest in history.digests():
            if digest not in sets:
                sets[digest] = history.fetch(digest)
    return sets


def _origins(topics: set[str], participant: str | None) -> list[str]:
    audited = sorted(t.removeprefix(AUDIT_PREFIX) for t in topics if t.startswith(AUDIT_PREFIX))
    if participant is None:
        return audited
    wanted = {participant}
    for topic in topics:
        parsed = parse_feed_topic(topic)
        if parsed is not None and parsed[0] == participant:
            wanted.add(parsed[1])
    return [origin for origin in audited if origin in wanted]


async def replay(
    settings: KafkaSettings,
    trust: TrustStore,
    request: ReplayRequest,
    *,
    history: AgreementHistory | None = None,
    progress: Progress | None = None,
    governance: Sequence[GovernedStore] = (),
    clients: KafkaClients = AIOKAFKA,
) -> Verdict:
    """Read the period from Kafka and return the verifier's verdict.

    With ``governance`` (the governed stores the period was routed under, one or more),
    each record is checked under the store the router held when it decided it, as the
    agreements topic records them, and the verdict says whether the router routed under
    those stores as their governance allows (``domain.audit_trust``); ``trust`` is then
    not used. Without, everything is checked under ``trust``.
    """
    window = request.window
    wide_start, wide_end = window.start - request.slack, window.end + request.grace
    async with KafkaReader(settings, progress, clients) as reader:
        topics = await reader.topics()
        origins = _origins(topics, request.participant)
        if not origins:
            raise AuditError(
                "no audit topic to replay"
                + (f" for participant {request.participant}" if request.participant else "")
            )
        sets = await load_agreement_sets(reader, history, topics)
        used = await agreement_records(reader, topics) if governance else []
        timeline = store_timeline(used, governance) if governance else TrustTimeline.fixed(trust)
        checker = Replay(window, timeline, sets)
        decided_at: list[datetime] = []
        log.info("audit.replay_start", origins=origins, agreement_sets=len(sets))
        for origin in origins:
            for tp in await reader.partitions(audit_topic(origin)):
                logs = await reader.read_between(tp, wide_start, wide_end)
                start = await reader.chain_start(tp)
                check = checker.add_chain(tp.topic, tp.partition, logs, start)
                decided_at.extend(
                    e.recorded_at
                    for e in check.entries
                    if e.kind != AuditKind.CHECKPOINT and e.recorded_at in window
                )
                outbox = TopicPartition(outbox_topic(origin), tp.partition)
                checker.add_retained(outbox.topic, outbox.partition, *await reader.retained(outbox))
                await _read_outbox(reader, checker, origin, tp.partition, check.entries, window)
            for topic in sorted(t for t in topics if _is_feed_of(t, origin)):
                for feed in await reader.partitions(topic):
                    checker.add_retained(feed.topic, feed.partition, *await reader.retained(feed))
                    checker.add_feed(await reader.read_between(feed, wide_start, wide_end))
            if hits_topic(origin) in topics:  # reports to it, acknowledgements of its own
                for tp in await reader.partitions(hits_topic(origin)):
                    checker.add_retained(tp.topic, tp.partition, *await reader.retained(tp))
                    checker.add_hits(await reader.read_between(tp, wide_start, wide_end))
        if QUARANTINE_TOPIC in topics:
            for tp in await reader.partitions(QUARANTINE_TOPIC):
                checker.add_quarantine(await reader.read_between(tp, wide_start, wide_end))
        else:
            checker.note(f"{QUARANTINE_TOPIC} does not exist or is not readable")
    verdict = checker.verdict()
    if governance:
        found = trust_violations(
            used, governance, window, decided_at, frozenset(verdict.stats.agreement_sets)
        )
        verdict = replace(verdict, violations=(*verdict.violations, *found))
    log.info(
        "audit.replay_done",
        violations=len(verdict.violations),
        decisions=verdict.stats.decisions,
        records=(progress.records if progress else None),
    )
    return verdict


def _is_feed_of(topic: str, origin: str) -> bool:
    parsed = parse_feed_topic(topic)
    return parsed is not None and parsed[1] == origin


async def _read_outbox(
    reader: KafkaReader,
    checker: Replay,
    origin: str,
    partition: int,
    entries: Iterable[AuditEntry],
    window: Window,
) -> None:
    tp = TopicPartition(outbox_topic(origin), partition)
    offsets = [
        int(e.record["source_offset"])
        for e in entries
        if e.recorded_at in window and e.record.get("source_offset") is not None
    ]
    start = await reader.offset_at(tp, window.start)
    end = await reader.offset_at(tp, window.end)
    if offsets:
        start, end = min(start, min(offsets)), max(end, max(offsets) + 1)
    checker.add_outbox(tp.topic, partition, await reader.read(tp, start, end))


async def audit_entries(
    settings: KafkaSettings,
    trust: TrustStore,
    origin: str,
    window: Window,
    clients: KafkaClients = AIOKAFKA,
) -> tuple[list[Disclosure], list[str]]:
    """What ``origin``'s alerts disclosed in ``window``, and any chain problem found on the way."""
    found: list[Disclosure] = []
    problems: list[str] = []
    async with KafkaReader(settings, clients=clients) as reader:
        topics = await reader.topics()
        if audit_topic(origin) not in topics:
            raise AuditError(f"no audit topic {audit_topic(origin)}")
        for tp in await reader.partitions(audit_topic(origin)):
            logs = await reader.read_between(tp, window.start, window.end + timedelta(minutes=5))
            check = verify_chain(tp.topic, tp.partition, logs, trust)
            problems.extend(
                f"{v.code} at {v.topic}/{v.partition}/{v.offset}: {v.detail}"
                for v in check.violations
            )
            found.extend(disclosures(check.entries, window, origin))
    found.sort(key=lambda d: (d.recorded_at, d.message_id, d.recipient))
    return found, problems


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The machine-readable report of ``verdict``."""
    stats = verdict.stats
    pairs = sorted(set(stats.delivered) | set(stats.denied))
    return {
        "window": {"from": iso(verdict.window.start), "to": iso(verdict.window.end)},
        "verdict": "CLEAN" if verdict.clean else "VIOLATIONS",
        "counts": {
            "audit_records": stats.audit_records,
            "decisions": stats.decisions,
            "quarantined": stats.quarantined,
            "hit_reports": stats.hit_reports,
            "hit_acknowledgements": stats.hit_acks,
            "checkpoints": stats.checkpoints,
            "outbox_records": stats.outbox_records,
            "feed_records": stats.feed_records,
            "signatures_verified": stats.signatures_verified,
            "feed_copies_checked": stats.copies_checked,
            "hit_copies_checked": stats.hit_copies_checked,
            "erased_under_retention": {
                "outbox_records": stats.erased_outbox,
                "feed_copies": stats.erased_feed,
            },
            "violations": len(verdict.violations),
        },
        "flows": [
            {
                "origin": origin,
                "recipient": recipient,
                "delivered_by_type": dict(
                    sorted(stats.delivered.get((origin, recipient), {}).items())
                ),
                "denied_by_reason": dict(sorted(stats.denied.get((origin, recipient), {}).items())),
            }
            for origin, recipient in pairs
        ],
        "quarantined_by_reason": {
            origin: dict(sorted(reasons.items()))
            for origin, reasons in sorted(stats.quarantine_reasons.items())
        },
        "agreement_sets": [
            {"digest": digest, "label": label, "decisions": count}
            for digest, (label, count) in sorted(stats.agreement_sets.items())
        ],
        "chains": [
            {
                "chain": chain.chain,
                "records": chain.records,
                "first_seq": chain.first_seq,
                "last_seq": chain.last_seq,
                "checkpoints": chain.checkpoints,
                "from_genesis": chain.from_genesis,
            }
            for chain in verdict.chains
        ],
        "notes": list(verdict.notes),
        "violations": [violation.as_json() for violation in verdict.violations],
    }


def summary_lines(verdict: Verdict) -> list[str]:
    """The readable summary of ``verdict``."""
    stats = verdict.stats
    window = verdict.window
    lines = [
        f"Audit replay {iso(window.start)} .. {iso(window.end)}: "
        + ("CLEAN" if verdict.clean else f"{len(verdict.violations)} VIOLATION(S)"),
        f"  {stats.decisions} decisions, {stats.quarantined} quarantined, "
        f"{stats.audit_records} audit records ({stats.checkpoints} checkpoints), "
        f"{stats.feed_records} feed records, {stats.signatures_verified} signatures verified",
        f"  {stats.hit_reports} hit reports, {stats.hit_acks} acknowledgements delivered, "
        f"{stats.hit_copies_checked} hit-topic copies checked",
    ]
    if stats.erased_outbox or stats.erased_feed:
        lines.append(
            f"  erased under retention: {stats.erased_outbox} outbox records, "
            f"{stats.erased_feed} feed copies (chains verified, decisions re-evaluated)"
        )
    for origin, recipient in sorted(set(stats.delivered) | set(stats.denied)):
        delivered: Mapping[str, int] = stats.delivered.get((origin, recipient), {})
        denied: Mapping[str, int] = stats.denied.get((origin, recipient), {})
        lines.append(
            f"  {origin} -> {recipient}: delivered "
            + (", ".join(f"{t} {n}" for t, n in sorted(delivered.items())) or "none")
            + "; denied "
            + (", ".join(f"{r} {n}" for r, n in sorted(denied.items())) or "none")
        )
    for origin, reasons in sorted(stats.quarantine_reasons.items()):
        lines.append(
            f"  {origin} quarantined: " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
        )
    for digest, (label, count) in sorted(stats.agreement_sets.items()):
        lines.append(f"  agreement set {label} ({digest[:12]}): {count} decisions")
    lines.extend(f"  note: {note}" for note in verdict.notes)
    lines.extend(
        f"  {v.code} {v.topic}/{v.partition}/{v.offset}: {v.detail}" for v in verdict.violations
    )
    return lines


def write_report(path: Path, report: Mapping[str, Any]) -> None:
    """Write the JSON report to ``path``."""
    try:
        path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise AuditError(f"cannot write report {path}: {exc.strerror}") from exc
