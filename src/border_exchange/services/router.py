"""The router: exactly-once, policy-checked fan-out from outboxes to partner feeds.

Each outbox partition is routed by a ``PartitionWorker`` that owns a transactional
producer whose id names that partition. aiokafka lacks KIP-447, so fencing rests on
that id: when a partition moves to another router, the new owner's
``init_transactions`` fences the old producer and settles its open transaction before
the new owner reads anything. The worker then rebuilds its memory (ids already
routed, who received each alert, the audit chain head) from the partition's audit
chain and resumes after the last record the chain decided. Each batch's feed copies,
quarantine records and audit records go in one transaction, and each audit record
carries the offset of the record it decides: the chain is the consumed position, exact
after any crash. The consumer group's offset, which operators' tools read, is
committed in a routing transaction at most once per ``offset_commit_interval``.

The module is long because the worker's transaction cycle (fence, rebuild, route,
send, commit, checkpoint) and the router's loop over its assigned partitions share
the worker's state and aiokafka's objects; what is decided without Kafka is already in
``domain/routing.py`` and ``domain/policy.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import structlog
from aiokafka.errors import IllegalStateError, ProducerFenced
from aiokafka.errors import KafkaError as AioKafkaError
from nacl.signing import SigningKey

from border_exchange.adapters.feed_state_lookup import (
    DeliveredHitsLookup,
    FeedStateLookup,
    Question,
)
from border_exchange.adapters.kafka_clients import (
    AIOKAFKA,
    Consumer,
    ConsumerRecord,
    KafkaClients,
    Producer,
    RebalanceListener,
    TopicPartition,
    fresh_partition_counts,
)
from border_exchange.adapters.kafka_errors import SendFault, describe, send_fault
from border_exchange.adapters.kafka_settings import (
    KafkaSettings,
    consumer_size_kwargs,
    producer_size_kwargs,
)
from border_exchange.adapters.metrics import Metrics
from border_exchange.adapters.process_clock import process_age
from border_exchange.domain import limits
from border_exchange.domain.agreements import AgreementSet
from border_exchange.domain.audit import (
    AuditKind,
    ChainHead,
    chain_id,
    checkpoint_record,
    decision_record,
    encode_audit,
    head_signing_input,
    outcome_entries,
    quarantine_audit_record,
)
from border_exchange.domain.audit_gap import ChainStart, FeedRecovery, may_route
from border_exchange.domain.consent import consents
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.envelope import Header
from border_exchange.domain.erasure import Erasure, ErasureSchedule
from border_exchange.domain.hit_routing import (
    DeliveredHit,
    HitRouted,
    HitSigned,
    ReceivedAlert,
    check_hit_unsigned,
    hit_audit_record,
    hit_quarantine_fields,
    route_hit_signed,
)
from border_exchange.domain.hits import HitAcknowledgement, HitReport, MessageKind, message_kind
from border_exchange.domain.memo import PerObject
from border_exchange.domain.naming import (
    AGREEMENTS_TOPIC,
    QUARANTINE_TOPIC,
    ROUTER_GROUP,
    ROUTER_TXN_PREFIX,
    audit_topic,
    feed_state_topic,
    feed_topic,
    hits_topic,
    notices_topic,
    outbox_state_topic,
    parse_outbox_topic,
)
from border_exchange.domain.partitioning import expected_partition, key_hash
from border_exchange.domain.permitted import AGREEMENT_HEADER, reference_value
from border_exchange.domain.policy import Deliver, Outcome, PolicyIndex
from border_exchange.domain.quarantine import RefusedRecord, encode_quarantine
from border_exchange.domain.quarantine_notice import QuarantineNotice, encode_notice
from border_exchange.domain.retention import DEFAULT_POLICY, RetentionPolicy
from border_exchange.domain.routing import (
    SIGNED_OK_REASONS,
    Inbound,
    PartitionState,
    QuarantineReason,
    Refused,
    Routed,
    RoutingRules,
    Signed,
    check_unsigned,
    replay_audit,
    route_signed,
)
from border_exchange.domain.signature_batch import SignatureChecks, signature_checks
from border_exchange.domain.trust import TrustStore
from border_exchange.domain.trust_governance import (
    TRUST_STORE_HEADER,
    GovernedStore,
    StoreReference,
    stale,
)
from border_exchange.errors import (
    ConfigError,
    KafkaError,
    TrustStoreExpiredError,
    UndeliverableError,
)

log = structlog.get_logger("border_exchange.router")

OUTBOX_PATTERN: Final = r"^bx\.(?:[A-Z]{3}|UN-[A-Z]{3,12})\.outbox$"
"""The outboxes the router subscribes to; new participants' outboxes match as they appear."""


def transactional_id(tp: TopicPartition) -> str:
    """The transactional id that owns routing of outbox partition ``tp``."""
    return f"{ROUTER_TXN_PREFIX}{tp.topic}.{tp.partition}"


@dataclass(frozen=True)
class RouterTuning:
    """Operator settings of the router's loop."""

    batch_size: int = 2000
    checkpoint_every: int = 1000
    checkpoint_interval: float = 10.0
    offset_commit_interval: float = 10.0
    """Seconds between commits of the group's offset (the chain holds the exact position)."""
    topic_refresh: float = 5.0
    rules: RoutingRules = field(default_factory=RoutingRules)
    group_id: str = ROUTER_GROUP
    outbox_pattern: str = OUTBOX_PATTERN
    accepted_audit_gaps: frozenset[str] = frozenset()
    """Audit chains whose deleted start an operator accepted (``ChainStart.token``)."""
    session_timeout: float = 6.0
    """Seconds without a heartbeat after which the group gives a member's partitions to the
    others (the broker's smallest by default: ``group.min.session.timeout.ms``)."""
    heartbeat_interval: float = 1.0
    """Seconds between heartbeats; also how soon a live member hears of a rebalance."""
    group_instance_id: str | None = None
    """Static membership: a member rejoining with its id gets its partitions back at once."""
    retention: RetentionPolicy = DEFAULT_POLICY
    """Its grace period: when the state of a cancelled or expired alert is erased."""


@dataclass(frozen=True)
class PolicyView:
    """The trust store and agreement set in force, with the index built for them."""

    trust: TrustStore
    agreements: AgreementSet
    index: PolicyIndex
    references: Mapping[str, bytes] = field(default_factory=dict)
    """Per agreement id, the ``bx-agreement`` header value of the copies it permits."""
    governance: GovernedStore | None = None
    """The governance of ``trust`` (None: not governed): its serial, digest and validity."""
    store: StoreReference | None = None
    """The governed trust store in force (None: not governed), published with the set."""

    @classmethod
    def build(
        cls, trust: TrustStore, agreements: AgreementSet, governance: GovernedStore | None = None
    ) -> PolicyView:
        """Index ``agreements``, as their parties' signatures establish them, for the active
        participants of ``trust`` (governed by ``governance``)."""
        participants = [p.id for p in trust.participants.values() if p.active]
        consent = consents(agreements, trust)
        return cls(
            trust,
            agreements,
            PolicyIndex.build(agreements, participants, consent),
            {aid: reference_value(aid, c.digest) for aid, c in consent.items()},
            governance,
            None if governance is None else StoreReference.of(governance),
        )

    def expired(self, now: datetime) -> str | None:
        """Why the governed trust store of this view may not be routed under at ``now`` (past
        its validity window); None when it may, or when the store is not governed."""
        return None if self.governance is None else stale(self.governance, now)


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The router's clock."""
    return datetime.now(UTC)


STORE_RECHECK: Final = 0.5
"""Seconds between two looks at the trust store in force while routing is held for it."""


@dataclass(slots=True)
class _Output:
    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    headers: list[tuple[str, bytes]] | None = None
    source: int | None = None
    """The outbox offset of the record this output was written for (None: a checkpoint)."""
    copy: bool = False
    """Whether this is a partner's copy of the record (a send refused blames the record)."""


@dataclass(frozen=True, slots=True)
class _Sent:
    """One queued send of a transaction: its delivery future and the outputs it carries."""

    future: asyncio.Future[Any]
    outputs: tuple[_Output, ...]


def _failed(error: BaseException) -> asyncio.Future[Any]:
    """A future already failed with ``error`` (a send refused before it was queued)."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future


async def _acknowledged(sent: Sequence[_Sent]) -> None:
    """Wait for every send of a transaction; raise if one failed, so that it aborts.

    aiokafka commits a transaction whatever became of its sends: a batch the broker
    refused is simply missing from it. So nothing commits before each send is
    acknowledged. A refusal that blames the records (too large, invalid,
    unauthorized) raises ``UndeliverableError`` naming their offsets; any other
    failure is raised as it is (the producer is replaced either way: the refused
    batch's sequence numbers are spent).
    """
    results = await asyncio.gather(*(s.future for s in sent), return_exceptions=True)
    failures = [
        (error, entry)
        for error, entry in zip(results, sent, strict=True)
        if isinstance(error, BaseException)
    ]
    if not failures:
        return
    for error, _ in failures:
        if send_fault(error) is SendFault.FENCED:
            raise error
    blamed: dict[int, str] = {}
    for error, entry in failures:
        if send_fault(error) is not SendFault.RECORD:
            continue
        for output in entry.outputs:
            if output.copy and output.source is not None:
                blamed.setdefault(
                    output.source,
                    f"the broker refused its copy for {output.topic}: {describe(error)}",
                )
    if blamed:
        raise UndeliverableError(blamed) from failures[0][0]
    raise failures[0][0]


RETRY_BACKOFF_MS: Final = 10
"""Pause before a transactional or produce request is retried (aiokafka's default: 100 ms).

Right after a commit the broker is still writing the transaction's markers and may
answer the next transaction's requests with CONCURRENT_TRANSACTIONS. aiokafka retries
a transaction's first AddPartitionsToTxn after 20 ms of its own; any other retry
waits this long. Retries are rare (5 in 958 transactions at 1,000 messages a
second), but at the default each would add 100 ms to every message of its
transaction.
"""


ERASE_BATCH: Final = 1000
"""Alerts erased (tombstoned) per transaction at most."""

REBALANCE_TIMEOUT_MS: Final = 30_000
"""How long a rebalance waits for live members to rejoin (each first closes its workers)."""


RETRY_PAUSE: Final = 0.2
"""Seconds before a transaction that failed for a transient reason is tried again."""

RETRY_PAUSE_MAX: Final = 10.0
"""The longest pause, reached as the same failure recurs (the pause doubles each time)."""


FRESH_FOR: Final = 10.0
"""Seconds a metadata answer asked afresh that showed no such topic is believed (a state
topic of an exchange provisioned before them); then it is asked about again."""

ROUTE_SLICE: Final = 8
"""Records routed between two yields to the event loop (a few milliseconds of work).

The partitions share one event loop: a worker that routes without yielding holds up
every other partition's next transactional request by as long.
"""


_SUMMARY_LIMIT: Final = 256
"""How many outcome mappings a worker keeps the summary of."""


@dataclass(frozen=True, slots=True)
class _OutcomeSummary:
    """What the router derives from one decision's outcomes, the same for every decision
    that shares them: the audit record's outcome entries, the recipients, the counts."""

    entries: list[dict[str, Any]]
    """``audit.outcome_entries`` of the outcomes; never changed once built."""
    recipients: tuple[str, ...]
    counted: tuple[tuple[str, str, str], ...]
    """One metric key per copy delivered and per participant denied (the origin aside)."""

    @classmethod
    def of(cls, outcomes: Mapping[str, Outcome], origin: str) -> _OutcomeSummary:
        """The summary of ``outcomes`` of a message from ``origin``."""
        recipients = []
        counted = []
        for participant, outcome in outcomes.items():
            if isinstance(outcome, Deliver):
                recipients.append(participant)
                counted.append(("delivered_total", "recipient", participant))
            elif participant != origin:
                counted.append(("denied_total", "reason", outcome.reason.value))
        return cls(outcome_entries(outcomes), tuple(recipients), tuple(counted))


@dataclass(frozen=True, slots=True)
class _Feed:
    """Where a recipient's copies of one origin's alerts go, as known for one batch."""

    origin: str
    topic: str
    partitions: int
    """The feed's partition count (0: unknown, the producer's partitioner chooses)."""
    state: str | None
    """The feed's state topic, None when it does not exist (provisioned before them)."""


def _grouped(outputs: Sequence[_Output]) -> dict[tuple[str, int | None], list[_Output]]:
    """``outputs`` by topic and partition, each group in its original order."""
    groups: dict[tuple[str, int | None], list[_Output]] = {}
    for output in outputs:
        key = (output.topic, output.partition)
        group = groups.get(key)
        if group is None:
            groups[key] = [output]
        else:
            group.append(output)
    return groups


_Answer = TypeVar("_Answer")


def _answered(
    asked: Mapping[int, object],
    questions: Mapping[int, Question],
    answers: Mapping[Question, _Answer | None],
) -> dict[int, _Answer | None]:
    """For each index ``asked``, the answer to its question (None when it had none)."""
    return {index: answers.get(questions[index]) if index in questions else None for index in asked}


class PartitionWorker:
    """Routes one outbox partition through its own transactional producer."""

    def __init__(self, router: Router, tp: TopicPartition, partitions: int) -> None:
        self.router = router
        self.tp = tp
        self.origin = parse_outbox_topic(tp.topic) or ""
        self.partitions = partitions
        self.audit_tp = TopicPartition(audit_topic(self.origin), tp.partition)
        self.state = PartitionState()
        self.head = ChainHead(chain_id(tp.topic, tp.partition))
        self.start_found: ChainStart | None = None
        """Where the audit chain began on the last rebuild (records may have been deleted)."""
        self.recovery: FeedRecovery | None = None
        """What was recovered from the partner feeds when the chain's start was deleted."""
        self.blocked = False
        """Whether this partition is held unrouted: its chain lost records the feeds
        cannot make up for, and no operator accepted the gap (``audit_gap.may_route``)."""
        self.last_checkpoint = time.monotonic()
        self.producer: Producer | None = None
        self.next_offset = 0
        """The first offset not yet routed: records below it were fetched before a rebalance."""
        self.group_offset = 0
        """The consumer group's committed offset, as this worker last committed or read it."""
        self.group_offset_at = time.monotonic()
        """When this worker last committed the group's offset."""
        self.queue: asyncio.Queue[Sequence[ConsumerRecord[bytes, bytes]] | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.queued = 0
        """Records queued and not yet taken by the loop."""
        self.held = False
        """Whether the run loop paused this partition because too much is queued."""
        self.closing = False
        """Set when the worker is being closed (a hold for the trust store ends then)."""
        self._resources = contextlib.ExitStack()
        self._checks: SignatureChecks[int] | None = None
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._checked_at = 0.0
        """When the batch in hand had its records and signatures checked (``perf_counter``)."""
        """Metrics of the transaction in hand, added once it commits."""
        self._references: Mapping[str, bytes] = router.view.references
        self._logged: list[tuple[str, dict[str, Any]]] = []
        """Log events of the transaction in hand (routed, quarantined), logged once it commits."""
        self.undeliverable: dict[int, str] = {}
        """Outbox offsets whose copies the broker refused for good, with why: quarantined
        when routed again."""
        self.isolate_through = -1
        """Up to this offset, records go one per transaction: a refused batch carried
        several records' copies, and the one to blame is not known yet."""
        self._failures = 0
        """Transactions failed in a row (for the pause before the next attempt)."""
        self._feeds: dict[str, _Feed] = {}
        """Per recipient: its feed from this partition's origin, for the batch in hand."""
        self._states: dict[str, bool] = {}
        """Whether each feed state topic exists, for the batch in hand."""
        self.erasure = ErasureSchedule(router.tuning.retention.grace)
        """When each alert of this partition is to be erased from the state topics."""
        # A routed message's origin is this outbox's owner (the router refuses any other).
        self._summaries = PerObject[Mapping[str, Outcome], _OutcomeSummary](
            functools.partial(_OutcomeSummary.of, origin=self.origin), _SUMMARY_LIMIT
        )
        self.fence_seconds = 0.0
        """How long the last start took to fence the earlier owner (for the start's log)."""

    async def start(self) -> None:
        """Fence any earlier owner of this partition, then rebuild state from the audit chain."""
        producer = self.router.producer_factory(
            **self.router.kafka.client_kwargs(),
            **producer_size_kwargs(),
            transactional_id=transactional_id(self.tp),
            enable_idempotence=True,
            acks="all",
            # Records go in batches built by the worker; nothing is gained by waiting.
            linger_ms=0,
            max_batch_size=limits.ROUTER_BATCH_BYTES,
            retry_backoff_ms=RETRY_BACKOFF_MS,
        )
        began = time.monotonic()
        # The audit chain's reader connects while the producer fences; it reads only after.
        reader = self.router.clients.consumer(
            **self.router.kafka.client_kwargs(),
            **consumer_size_kwargs(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            group_id=None,
        )
        connecting = asyncio.ensure_future(reader.start())
        try:
            await producer.start()  # init_transactions: fences the earlier owner
            self.producer = producer
            self.fence_seconds = time.monotonic() - began
            await connecting
            await self.rebuild(reader)
        finally:
            connecting.cancel()  # if the fencing failed first
            await asyncio.gather(connecting, return_exceptions=True)
            await reader.stop()

    async def stop_producer(self) -> None:
        """Close the producer (no transaction is open between batches)."""
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    def launch(self) -> None:
        """Start routing this partition's batches in a task of its own.

        Each partition commits on its own: while one waits for the broker to commit a
        transaction, the others route.
        """
        self.task = asyncio.create_task(
            self._loop(), name=f"route {self.tp.topic}/{self.tp.partition}"
        )

    async def close(self) -> None:
        """Drop queued batches, let the batch in hand finish its transaction, and stop."""
        self.closing = True
        self._drain()
        self.queue.put_nowait(None)
        if self.task is not None:
            try:
                await self.task
            except Exception as exc:  # already reported by the run loop, which stops on it
                log.debug("router.worker_ended", error=repr(exc))
            else:
                await self._commit_group_offset()
        await self.stop_producer()
        self._close_signature_checks()

    def enqueue(self, records: Sequence[ConsumerRecord[bytes, bytes]], limit: int) -> None:
        """Queue ``records``; past ``limit`` queued records, pause fetching this partition.

        Pausing holds back only this partition: the run loop goes on fetching and
        dispatching the others, whose routing must not wait for this one's commits.
        """
        self.queue.put_nowait(records)
        self.queued += len(records)
        if self.queued >= limit and not self.held:
            consumer = self.router.consumer
            assert consumer is not None
            consumer.pause(self.tp)
            self.held = True

    def _release(self, taken: int) -> None:
        self.queued -= taken
        if self.held and self.queued < self.router.tuning.batch_size:
            self.held = False
            consumer = self.router.consumer
            if consumer is not None:
                # Revoked meanwhile: its next owner starts it.
                with contextlib.suppress(IllegalStateError):
                    consumer.resume(self.tp)

    def _drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
        self.queued = 0
        self.held = False

    async def _loop(self) -> None:
        tuning = self.router.tuning
        while True:
            if self.blocked:
                await self._held()
                return
            timeout = tuning.checkpoint_interval
            if self._owed_offset is not None:
                # An idle partition's group offset catches up after the interval.
                timeout = min(timeout, self._until_group_offset_due())
            try:
                first = await asyncio.wait_for(self.queue.get(), timeout=timeout)
            except TimeoutError:
                await self._guarded(self.checkpoint_if_due)
                await self._guarded(self.erase_if_due)
                await self._guarded(self.group_offset_if_due)
                continue
            # Everything queued while the last transaction committed goes in the next one:
            # the busier the partition, the fewer commits per record.
            batches = [first]
            while batches[-1] is not None and not self.queue.empty():
                batches.append(self.queue.get_nowait())
            records = [r for batch in batches if batch is not None for r in batch]
            self._release(len(records))
            try:
                if records:
                    await self._guarded(functools.partial(self.process, records))
                    await self._guarded(self.checkpoint_if_due)
                    await self._guarded(self.erase_if_due)
                if batches[-1] is None:
                    return
            finally:
                for _ in batches:
                    self.queue.task_done()

    async def _held(self) -> None:
        """Route nothing (the partition stays paused) until the worker is closed."""
        while await self.queue.get() is not None:
            self.queue.task_done()
        self.queue.task_done()

    async def _guarded(self, step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except ProducerFenced as exc:
            raise KafkaError(
                f"another router took over {self.tp.topic}/{self.tp.partition}; "
                "this process must not route it any more"
            ) from exc
        except UndeliverableError as exc:
            self._blame(exc.blamed)
            await self._recover(exc)
        except AioKafkaError as exc:
            self._failures += 1
            # A transient failure is tried again, later each time it recurs.
            await asyncio.sleep(min(RETRY_PAUSE * 2 ** (self._failures - 1), RETRY_PAUSE_MAX))
            await self._recover(exc)

    def _blame(self, blamed: Mapping[int, str]) -> None:
        """Remember the record the broker refused, or isolate the records of a refused batch."""
        if len(blamed) == 1:
            self.undeliverable.update(blamed)
        else:
            self.isolate_through = max(self.isolate_through, *blamed)
        log.warning(
            "router.copy_refused",
            partition=f"{self.tp.topic}/{self.tp.partition}",
            offsets=sorted(blamed),
            detail=next(iter(blamed.values())),
            isolated=len(blamed) > 1,
        )

    async def _recover(self, exc: Exception) -> None:
        """After an aborted transaction: a new producer (fencing the old one: its sequence
        numbers may be spent), the memory rebuilt from the audit chain, routing resumed
        after the last commit."""
        consumer = self.router.consumer
        assert consumer is not None
        # Nothing fetched from here on may be routed before the seek below.
        consumer.pause(self.tp)
        self._drain()
        log.error(
            "router.batch_aborted",
            partition=f"{self.tp.topic}/{self.tp.partition}",
            error=repr(exc),
        )
        await self.stop_producer()
        await self.start()
        self._drain()
        if self.blocked:  # the chain lost records meanwhile: held, paused (see rebuild)
            return
        await self.router.resume(self)
        consumer.resume(self.tp)

    async def rebuild(self, reader: Consumer) -> None:
        """Read this partition's audit chain to its end with ``reader`` (started, with no
        group) and rebuild the routing memory."""
        began = time.monotonic()
        state = PartitionState()
        erasure = ErasureSchedule(self.router.tuning.retention.grace)
        chain = chain_id(self.tp.topic, self.tp.partition)
        head = ChainHead(chain)
        first_seq: int | None = None
        records = 0
        if self.audit_tp.topic not in await reader.topics():
            raise ConfigError(
                f"audit topic {self.audit_tp.topic} of outbox {self.tp.topic} does not "
                "exist: run 'border-exchange provision'"
            )
        # Where the chain starts and ends, asked together (a round trip each).
        starts, ends = await asyncio.gather(
            reader.beginning_offsets([self.audit_tp]), reader.end_offsets([self.audit_tp])
        )
        log_start, end = starts[self.audit_tp], ends[self.audit_tp]
        reader.assign([self.audit_tp])
        reader.seek(self.audit_tp, log_start)
        while await reader.position(self.audit_tp) < end:
            batch = await reader.getmany(self.audit_tp, timeout_ms=1000)
            for record in batch.get(self.audit_tp, []):
                if record.value is None:
                    continue
                _, audit = decode_record(record.value)
                replay_audit(state, audit)
                erasure.note_audit(audit)
                # The chain goes on from the last record's position and hash, whatever
                # came before it (records deleted at the start are not counted).
                head = head.following(audit["seq"], record.value, AuditKind(audit["kind"]))
                if first_seq is None:
                    first_seq = int(audit["seq"])
                records += 1
        self.start_found = ChainStart(chain, log_start, first_seq)
        self.recovery = None
        if self.start_found.truncated:
            # Imported here: only a chain that lost records needs it (and the auditor's reader).
            from border_exchange.services.feed_recovery import recover_from_feeds

            self.recovery = await recover_from_feeds(
                self.router.kafka, self.tp, state, self.router.clients
            )
        retention = self.router.tuning.retention
        erasure.forget_written(self.router.clock(), retention.tombstone_reissue)
        self.state, self.head, self.erasure = state, head, erasure
        self.blocked = not may_route(
            self.start_found, self.recovery, self.router.tuning.accepted_audit_gaps
        )
        log.info(
            "router.partition_rebuilt",
            partition=f"{self.tp.topic}/{self.tp.partition}",
            audit_records=records,
            next_seq=head.seq,
            alerts=len(state.alerts),
            resume_at=state.next_offset,
            to_erase=len(erasure.pending),
            fence_ms=round(self.fence_seconds * 1000),
            rebuild_ms=round((time.monotonic() - began) * 1000),
        )
        if self.start_found.truncated:
            self._report_gap()

    def _report_gap(self) -> None:
        """Log (and count) a chain whose start was deleted: recovered, accepted, or held."""
        start, recovery = self.start_found, self.recovery
        assert start is not None
        fields: dict[str, Any] = {
            "partition": f"{self.tp.topic}/{self.tp.partition}",
            "audit": f"{self.audit_tp.topic}/{self.audit_tp.partition}",
            "detail": start.describe(),
            "gap": start.token,
        }
        if recovery is not None:
            fields.update(
                copies_recovered=recovery.copies,
                messages_recovered=recovery.messages,
                feeds_incomplete=list(recovery.incomplete),
            )
        self.router.metrics.set(
            "audit_gap", 1 if self.blocked else 0, labels={"partition": fields["partition"]}
        )
        if self.blocked:
            log.error(
                "router.audit_gap_held",
                advice=(
                    "this partition is not routed: the feeds cannot prove which of its "
                    "messages were delivered, and a re-sent one could be delivered twice; "
                    f"to route it anyway, add {start.token!r} to audit_gaps_accepted"
                ),
                **fields,
            )
        elif recovery is not None and not recovery.incomplete:
            log.warning("router.audit_gap_recovered", **fields)
        else:
            log.warning("router.audit_gap_accepted", **fields)

    def _checkpoint(self, head: ChainHead, now: datetime, outputs: list[_Output]) -> ChainHead:
        router = self.router
        signature = router.signing_key.sign(head_signing_input(head.chain, head.seq, head.head))
        record = encode_audit(
            checkpoint_record(head, now, router.signing_key_id, bytes(signature.signature))
        )
        outputs.append(_Output(self.audit_tp.topic, record, head.chain.encode(), self.tp.partition))
        return head.after(record, AuditKind.CHECKPOINT)

    def _audit(
        self, record: dict[str, Any], kind: AuditKind, source: int, outputs: list[_Output]
    ) -> None:
        data = encode_audit(record)
        chain = self.head.chain.encode()
        outputs.append(_Output(self.audit_tp.topic, data, chain, self.tp.partition, None, source))
        self.head = self.head.after(data, kind)

    def _route(
        self,
        record: ConsumerRecord[bytes, bytes],
        hashed: int | None,
        result: Routed | Refused,
        now: datetime,
        out: list[_Output],
    ) -> str:
        if isinstance(result, Routed):
            envelope = result.envelope
            header = envelope.header
            present = result.present
            source = ("bx-source", f"{record.topic}/{record.partition}/{record.offset}".encode())
            references = self._references
            outcomes = result.decision.outcomes
            encoded: dict[int, bytes] = {}
            for recipient, copy in result.copies:
                # Each copy names the agreement it was delivered under, for the post to check.
                permitted = outcomes.get(recipient)
                reference = (
                    references.get(permitted.agreement_id)
                    if isinstance(permitted, Deliver) and permitted.agreement_id is not None
                    else None
                )
                headers = [source] if reference is None else [source, (AGREEMENT_HEADER, reference)]
                if copy is envelope:
                    # A copy that keeps every section is the origin's bytes, unchanged.
                    value = record.value
                else:
                    value = encoded.get(id(copy)) or encode_envelope(copy)
                    encoded[id(copy)] = value
                feed = self._feed(recipient, header.origin)
                # The default partitioner's choice, computed once for every copy.
                partition = (
                    None if hashed is None or not feed.partitions else hashed % feed.partitions
                )
                out.append(
                    _Output(feed.topic, value, record.key, partition, headers, record.offset, True)
                )
                # The feed's state, in the same transaction: its latest version of the alert.
                # It has the feed's partitions, so the same partition holds the same key.
                if feed.state is not None:
                    out.append(
                        _Output(
                            feed.state, value, record.key, partition, headers, record.offset, True
                        )
                    )
            summary = self._summaries(result.decision.outcomes)
            self._audit(
                decision_record(
                    self.head,
                    now,
                    record.offset,
                    header,
                    present,
                    result.decision,
                    result.earlier_recipients,
                    summary.entries,
                ),
                AuditKind.DECISION,
                record.offset,
                out,
            )
            self.state.apply_routed(header, summary.recipients)
            self.erasure.note(
                header.alert_id, header.operation, header.expires_at, now, summary.recipients
            )
            self._count_routed(header, summary)
            return "routed"
        self._quarantine(record, result, now, out)
        return "refused"

    def _count_routed(self, header: Header, summary: _OutcomeSummary) -> None:
        """Count one routed message, its copies and its denials; log it."""
        counts = self._counts
        counts["routed_total", "origin", header.origin] += 1
        counts.update(summary.counted)
        self._logged.append(
            (
                "router.routed",
                {
                    "message_id": header.message_id,
                    "alert_id": header.alert_id,
                    "version": header.version,
                    "origin": header.origin,
                    "recipients": list(summary.recipients),
                },
            )
        )

    def _feed(self, recipient: str, origin: str) -> _Feed:
        """The feed of ``recipient`` from ``origin``, as known for the batch in hand."""
        found = self._feeds.get(recipient)
        if found is None or found.origin != origin:
            topic = feed_topic(recipient, origin)
            state = feed_state_topic(recipient, origin)
            found = self._feeds[recipient] = _Feed(
                origin,
                topic,
                self.router.partition_count(topic),
                state if self._has_topic(state) else None,
            )
        return found

    def _writable(self, participants: Iterable[str]) -> list[str]:
        """The topics a batch of this outbox may write beside the audit: each partner's
        feed and feed state from its origin, and the origin's outbox state."""
        topics = [outbox_state_topic(self.origin)]
        for participant in participants:
            if participant != self.origin:
                topics += [
                    feed_topic(participant, self.origin),
                    feed_state_topic(participant, self.origin),
                ]
        return topics

    def _has_topic(self, topic: str) -> bool:
        """Whether ``topic`` exists (a state topic of an exchange provisioned before them
        may not: routing goes on without it)."""
        known = self._states.get(topic)
        if known is None:
            known = self._states[topic] = self.router.partition_count(topic) > 0
        if known:
            return True
        if topic not in self.router.missing_topics:
            self.router.missing_topics.add(topic)
            log.warning("router.state_topic_missing", topic=topic, hint="run provision")
        return False

    def _tombstones(self, erasures: Sequence[Erasure]) -> list[_Output]:
        """A tombstone for each alert in its recipients' feed states and its outbox state."""
        outputs = []
        for erasure in erasures:
            key = erasure.alert_id.encode()
            hashed = key_hash(key)
            topics = [feed_state_topic(r, self.origin) for r in sorted(erasure.recipients)]
            topics.append(outbox_state_topic(self.origin))
            for topic in topics:
                partitions = self.router.partition_count(topic)
                if partitions and hashed is not None:
                    outputs.append(_Output(topic, None, key, hashed % partitions))
        return outputs

    async def erase_if_due(self) -> None:
        """Tombstone the state of alerts whose cancellation or expiry plus grace has passed."""
        erasures = self.erasure.take_due(self.router.clock(), ERASE_BATCH)
        if not erasures:
            return
        outputs = self._tombstones(erasures)
        try:
            await self._commit(outputs)
        except BaseException:
            self.erasure.restore(erasures)
            raise
        retention = self.router.tuning.retention
        self.erasure.written(erasures, self.router.clock(), retention.state_segment)
        first = sum(not e.again for e in erasures)
        if first:
            self.router.count(Counter({("erased_total", "origin", self.origin): first}))
        log.info(
            "router.erased",
            partition=f"{self.tp.topic}/{self.tp.partition}",
            alerts=len(erasures),
            tombstones=len(outputs),
        )

    def _quarantine(
        self,
        record: ConsumerRecord[bytes, bytes],
        refused: Refused,
        now: datetime,
        out: list[_Output],
        hit: HitSigned | None = None,
    ) -> None:
        header = refused.header
        detail = limits.bounded_text(refused.detail)
        notices = notices_topic(self.origin)
        if self._has_topic(notices):
            # The service whose record it was learns of it, and of nothing else.
            message_id = header.message_id if header else hit.message_id if hit else None
            out.append(
                _Output(
                    notices,
                    encode_notice(
                        QuarantineNotice(
                            self.origin,
                            record.topic,
                            record.partition,
                            record.offset,
                            refused.reason.value,
                            detail,
                            now,
                            message_id,
                            header.alert_id if header else hit.alert_id if hit else None,
                            (MessageKind.ALERT if header else hit.kind if hit else None),
                        )
                    ),
                    record.key[: limits.QUARANTINE_PREFIX_BYTES] if record.key else record.key,
                    source=record.offset,
                )
            )
        out.append(
            _Output(
                QUARANTINE_TOPIC,
                encode_quarantine(
                    RefusedRecord(
                        record.topic,
                        record.partition,
                        record.offset,
                        record.key,
                        record.value,
                        refused.reason.value,
                        detail,
                        header,
                    ),
                    now,
                ),
                record.key[: limits.QUARANTINE_PREFIX_BYTES] if record.key else record.key,
                source=record.offset,
            )
        )
        audit = quarantine_audit_record(
            self.head, now, record.offset, refused.reason.value, detail, header
        )
        if hit is not None:
            audit.update(hit_quarantine_fields(hit))
            if refused.reason in SIGNED_OK_REASONS:
                self.state.remember_refused(hit.message_id, hit.expires_at)
        self._audit(audit, AuditKind.QUARANTINE, record.offset, out)
        self.state.apply_refused(header, refused.reason.value)
        self._counts["quarantined_total", "reason", refused.reason.value] += 1
        self._logged.append(
            (
                "router.quarantined",
                {
                    "reason": refused.reason.value,
                    "detail": detail,
                    "source": f"{record.topic}/{record.partition}/{record.offset}",
                    "message_id": header.message_id if header else hit.message_id if hit else None,
                    "alert_id": header.alert_id if header else hit.alert_id if hit else None,
                },
            )
        )

    def _route_hit(
        self,
        record: ConsumerRecord[bytes, bytes],
        hashed: int | None,
        signed: HitSigned,
        result: HitRouted | Refused,
        now: datetime,
        out: list[_Output],
    ) -> None:
        """Deliver a hit report or acknowledgement to its one recipient, audited; or
        quarantine it."""
        if isinstance(result, Refused):
            self._quarantine(record, result, now, out, signed)
            return
        topic = hits_topic(result.recipient)
        partitions = self.router.partition_count(topic)
        source = ("bx-source", f"{record.topic}/{record.partition}/{record.offset}".encode())
        partition = None if hashed is None or not partitions else hashed % partitions
        out.append(_Output(topic, record.value, record.key, partition, [source], record.offset))
        audit = hit_audit_record(self.head, now, record.offset, result)
        self._audit(audit, AuditKind(audit["kind"]), record.offset, out)
        self.state.remember_refused(signed.message_id, signed.expires_at)
        self._counts["hits_routed_total", "kind", signed.kind.value] += 1
        self._logged.append(
            (
                "router.routed",
                {
                    "kind": signed.kind.value,
                    "message_id": signed.message_id,
                    "alert_id": signed.alert_id,
                    "origin": signed.author,
                    "recipients": [result.recipient],
                },
            )
        )

    async def _received(self, reports: Mapping[int, HitSigned]) -> dict[int, ReceivedAlert | None]:
        """What the router delivered to each report's reporter of the alert it reports on
        (each feed state partition read once for the batch)."""
        if not reports:
            return {}  # the reader of the feed states is not even started
        questions: dict[int, Question] = {}
        for index, signed in reports.items():
            report = signed.message
            assert isinstance(report, HitReport)
            topic = feed_state_topic(report.reporter, report.alert_origin)
            partitions = await self.router.partition_count_now(topic)
            partition = expected_partition(report.alert_id.encode(), partitions)
            if partition is not None:  # else no state: nothing delivered there
                questions[index] = (topic, partition, report.alert_id)
        answers = await self.router.feed_states.received_all(questions.values())
        return _answered(reports, questions, answers)

    async def _delivered(self, acks: Mapping[int, HitSigned]) -> dict[int, DeliveredHit | None]:
        """The report each acknowledgement answers, as the router delivered it to the
        acknowledging origin (its hit topic's partition of the alert read once for the batch)."""
        if not acks:
            return {}  # the reader of the hit topics is not even started
        questions: dict[int, Question] = {}
        for index, signed in acks.items():
            ack = signed.message
            assert isinstance(ack, HitAcknowledgement)
            topic = hits_topic(ack.origin)
            partition = expected_partition(
                ack.alert_id.encode(), self.router.partition_count(topic)
            )
            if partition is not None:  # else no hit topic: nothing delivered there
                questions[index] = (topic, partition, ack.hit_id)
        answers = await self.router.delivered_hits.lookup(questions.values())
        return _answered(acks, questions, answers)

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Route ``records`` and commit their outputs and offset in one transaction.

        Records up to ``isolate_through`` go one per transaction, until the one whose
        copy the broker refuses is found.
        """
        while True:
            try:
                await self._process(records)
                return
            except TrustStoreExpiredError as expired:
                if not await self._hold_for_store(str(expired)):
                    return  # closed meanwhile: the partition's next owner routes them

    async def _process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        records = [r for r in records if r.offset >= self.next_offset]
        isolated = [r for r in records if r.offset <= self.isolate_through]
        for record in isolated:
            await self._transact([record])
        rest = records[len(isolated) :]
        if rest:
            await self._transact(rest)

    async def _hold_for_store(self, detail: str) -> bool:
        """Route nothing of this partition while the trust store in force is past its validity
        window (fail closed: the records stay unrouted, in hand, and fetching pauses once
        enough are queued); True once a valid store is in force, False when closed first."""
        router = self.router
        router.store_expired(self.tp, detail)
        while not self.closing:
            await asyncio.sleep(STORE_RECHECK)
            if router.view.expired(router.clock()) is None:
                router.store_valid(self.tp)
                return True
        return False

    async def _transact(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Route ``records`` in one transaction; commit it once every send was acknowledged."""
        if not records:
            return
        next_offset = records[-1].offset + 1
        head_before = self.head
        self._counts.clear()
        self._logged.clear()
        producer = self.producer
        assert producer is not None
        # The audit records carry every routed offset; the group's offset joins the
        # transaction only once per interval: on the broker a transactional offset
        # commit costs as much again as the rest of a small transaction.
        commit_offset = self._group_offset_due()
        started = time.perf_counter()
        try:
            async with producer.transaction():
                # The group's offset joins the transaction first, so its two round
                # trips (AddOffsetsToTxn, TxnOffsetCommit) run while the batch is routed
                # instead of after it.
                offsets = (
                    asyncio.ensure_future(self._send_group_offset(producer, next_offset))
                    if commit_offset
                    else None
                )
                try:
                    outputs = await self._route_all(records)
                    routed = time.perf_counter()
                    await _acknowledged(await self._send(producer, outputs))
                    sent = time.perf_counter()
                finally:
                    # Settled before the transaction commits or aborts, even on failure.
                    if offsets is not None:
                        await offsets
        except BaseException:
            self.head = head_before
            raise
        committed = time.perf_counter()
        self.next_offset = next_offset
        if commit_offset:
            self._group_offset_committed(next_offset)
        self._committed()
        checked = self._checked_at
        self.router.stage_seconds(
            check=checked - started,
            decide=routed - checked,
            send=sent - routed,
            commit=committed - sent,
            transaction=committed - started,
        )

    def _committed(self) -> None:
        """After a commit: count and log what it carried (only now is any of it true)."""
        self._failures = 0
        self.router.count(self._counts)
        self._counts.clear()
        if not self.router.delivering and self._logged:
            self.router.delivering = True
            # The CPU this process used by then, beside its age: on a loaded host the
            # difference is the time it waited for a core.
            log.info(
                "router.delivering",
                process_age=process_age(),
                process_cpu=round(time.process_time(), 3),
            )
        for event, fields in self._logged:
            if event == "router.routed":
                log.info(event, **fields)
            else:
                log.warning(event, **fields)
        self._logged.clear()
        for offset in [o for o in self.undeliverable if o < self.next_offset]:
            del self.undeliverable[offset]

    @property
    def _owed_offset(self) -> int | None:
        """The offset the group's commit is behind on (routing committed past it), or None."""
        return self.next_offset if self.group_offset < self.next_offset else None

    def _until_group_offset_due(self) -> float:
        """Seconds until the group's offset is due for a commit again (0: it is)."""
        since = time.monotonic() - self.group_offset_at
        return max(0.0, self.router.tuning.offset_commit_interval - since)

    def _group_offset_due(self) -> bool:
        return self._until_group_offset_due() == 0.0

    async def _send_group_offset(self, producer: Producer, offset: int) -> None:
        await producer.send_offsets_to_transaction({self.tp: offset}, self.router.tuning.group_id)

    def _group_offset_committed(self, offset: int) -> None:
        self.group_offset = offset
        self.group_offset_at = time.monotonic()

    async def group_offset_if_due(self) -> None:
        """Commit the group's offset, in a transaction of its own, once the interval is up."""
        if self._owed_offset is not None and self._group_offset_due():
            await self._commit([])

    async def _commit_group_offset(self) -> None:
        """Commit the group's offset if it is behind (on leaving); a failure is only logged.

        Nothing depends on it: the next owner resumes where the audit chain ends.
        """
        if self.producer is None or self._owed_offset is None:
            return
        try:
            await self._commit([])
        except (AioKafkaError, KafkaError) as exc:
            log.warning(
                "router.group_offset_not_committed",
                partition=f"{self.tp.topic}/{self.tp.partition}",
                error=repr(exc),
            )

    async def _route_all(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[_Output]:
        """Route ``records`` in order; their signatures are checked together, on a thread.

        First every check that needs neither the signature nor the memory, queuing the
        signatures; they are checked in batches on a worker thread without the GIL
        (``signature_batch``) while this thread goes on. Then each record is decided
        in order, against the memory of every earlier one, as soon as the batch of
        signatures it is in has been checked: the records of the first batches are
        decided while the thread checks the later ones. Routing yields to the event
        loop every few records, so the other partitions' transactions and the
        consumer's fetches go on meanwhile.
        """
        router = self.router
        view, rules, every = router.view, router.tuning.rules, router.tuning.checkpoint_every
        self._references = view.references  # of the view that decides this batch
        now = router.clock()
        expired = view.expired(now)
        if expired is not None:
            raise TrustStoreExpiredError(expired)  # before anything is sent: the transaction aborts
        checks = self._signature_checks()
        try:
            unsigned, queued = await self._check_all(records, view.trust, checks)
            self._checked_at = time.perf_counter()
            answers = checks.answered() if queued else None
            failed: set[int] = set()
            # Every signature queued for a record up to this index is answered.
            through = len(records) if answers is None else -1
            hit_messages = {
                index: checked
                for index, (_, checked) in enumerate(unsigned)
                if isinstance(checked, HitSigned)
            }
            if hit_messages and answers is not None:
                # A hit report is routed by what its reporter received, an acknowledgement
                # by the report delivered to its origin, asked for those whose signature
                # holds: every answer first (hits are few).
                async for _, bad in answers:
                    failed.update(bad)
                through = len(records)
            signed_hits = {i: h for i, h in hit_messages.items() if i not in failed}
            received = await self._received(
                {i: h for i, h in signed_hits.items() if h.kind is MessageKind.HIT_REPORT}
            )
            delivered = await self._delivered(
                {i: h for i, h in signed_hits.items() if h.kind is MessageKind.HIT_ACK}
            )
            outputs: list[_Output] = []
            self._feeds.clear()  # partition counts are read again for every transaction
            self._states.clear()
            await router.refresh(self._writable(view.index.participants))
            for index, (record, (hashed, checked)) in enumerate(
                zip(records, unsigned, strict=True)
            ):
                if index % ROUTE_SLICE == ROUTE_SLICE - 1:
                    await asyncio.sleep(0)
                if isinstance(checked, Refused):
                    self._route(record, hashed, checked, now, outputs)
                    continue
                while through < index:
                    assert answers is not None  # a signature was queued for this record
                    through, bad = await anext(answers)
                    failed.update(bad)
                if isinstance(checked, HitSigned):
                    hit = route_hit_signed(
                        checked,
                        index not in failed,
                        now=now,
                        rules=rules,
                        state=self.state,
                        received=received.get(index),
                        delivered=delivered.get(index),
                    )
                    self._route_hit(record, hashed, checked, hit, now, outputs)
                else:
                    result = route_signed(
                        checked,
                        index not in failed,
                        policy=view.index,
                        now=now,
                        rules=rules,
                        state=self.state,
                    )
                    self._route(record, hashed, result, now, outputs)
                if self.head.since_checkpoint >= every:
                    self.head = self._checkpoint(self.head, now, outputs)
                    self.last_checkpoint = time.monotonic()
                    # A busy partition never reaches the timed checkpoint, which prunes too.
                    self.state.prune(now, rules)
        except BaseException:
            # Checks queued for this batch must not be answered in the next one.
            self._close_signature_checks()
            raise
        return outputs

    async def _check_all(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        trust: TrustStore,
        checks: SignatureChecks[int],
    ) -> tuple[list[tuple[int | None, Signed | HitSigned | Refused]], int]:
        """Every check of ``records`` that needs neither the signature nor the memory, each
        record's signature queued in ``checks`` under its index; with each record its key's
        hash, and how many signatures were queued."""
        unsigned: list[tuple[int | None, Signed | HitSigned | Refused]] = []
        queued = 0
        for index, record in enumerate(records):
            if index % ROUTE_SLICE == ROUTE_SLICE - 1:
                await asyncio.sleep(0)
            hashed = key_hash(record.key)
            inbound = Inbound(
                record.topic, record.partition, record.offset, record.key, record.value
            )
            expected = None if hashed is None else hashed % self.partitions
            kind = message_kind(record.value)
            checked: Signed | HitSigned | Refused = (
                check_hit_unsigned(inbound, kind, expected_partition=expected, trust=trust)
                if kind is MessageKind.HIT_REPORT or kind is MessageKind.HIT_ACK
                else check_unsigned(inbound, expected_partition=expected, trust=trust)
            )
            refused = self.undeliverable.get(record.offset)
            if refused is not None:
                header = checked.envelope.header if isinstance(checked, Signed) else None
                checked = Refused(QuarantineReason.UNDELIVERABLE, refused, header)
            if isinstance(checked, Signed | HitSigned):
                checks.add(index, checked.signed, checked.public_key)
                queued += 1
            unsigned.append((hashed, checked))
        return unsigned, queued

    def _close_signature_checks(self) -> None:
        self._checks = None
        self._resources.close()

    def _signature_checks(self) -> SignatureChecks[int]:
        """This worker's batched signature checks, with their thread (started on first use)."""
        if self._checks is None:
            self._checks = self._resources.enter_context(signature_checks())
        return self._checks

    async def checkpoint_if_due(self) -> None:
        """Sign the chain head when records were added and the interval has passed."""
        due = time.monotonic() - self.last_checkpoint >= self.router.tuning.checkpoint_interval
        if self.head.since_checkpoint == 0 or not due:
            return
        self.state.prune(self.router.clock(), self.router.tuning.rules)
        outputs: list[_Output] = []
        head_before = self.head
        self.head = self._checkpoint(self.head, self.router.clock(), outputs)
        try:
            await self._commit(outputs)
        except BaseException:
            self.head = head_before
            raise
        self.last_checkpoint = time.monotonic()

    async def _commit(self, outputs: list[_Output]) -> None:
        """Write ``outputs`` (a checkpoint, or none) in a transaction of their own, with the
        group's offset when it is behind."""
        producer = self.producer
        assert producer is not None
        offset = self._owed_offset
        async with producer.transaction():
            if offset is not None:
                await self._send_group_offset(producer, offset)
            await _acknowledged(await self._send(producer, outputs))
        if offset is not None:
            self._group_offset_committed(offset)

    @staticmethod
    async def _send(producer: Producer, outputs: Sequence[_Output]) -> list[_Sent]:
        """Queue ``outputs`` in the open transaction, one record batch per partition.

        A batch costs far less per record than one ``send`` each. Records keep their
        order within each partition; a full batch is queued and a new one started.
        Returns each send's future with the outputs it carries: a send refused at once
        (too large for the producer, a topic it may not write) is a failed future.
        """
        sent: list[_Sent] = []

        async def queue(send: Awaitable[asyncio.Future[Any]], carried: list[_Output]) -> None:
            try:
                future = await send
            except AioKafkaError as exc:
                future = _failed(exc)
            sent.append(_Sent(future, tuple(carried)))

        for (topic, partition), group in _grouped(outputs).items():
            if partition is None:  # the default partitioner chooses (quarantine records)
                for output in group:
                    await queue(
                        producer.send(topic, output.value, key=output.key, headers=output.headers),
                        [output],
                    )
                continue
            batch = producer.create_batch()
            carried: list[_Output] = []
            for output in group:
                if (
                    batch.append(
                        key=output.key,
                        value=output.value,
                        timestamp=None,
                        headers=output.headers or [],
                    )
                    is None
                ):
                    await queue(producer.send_batch(batch, topic, partition=partition), carried)
                    batch = producer.create_batch()
                    carried = []
                    # The first record always fits in an empty batch.
                    batch.append(
                        key=output.key,
                        value=output.value,
                        timestamp=None,
                        headers=output.headers or [],
                    )
                carried.append(output)
            await queue(producer.send_batch(batch, topic, partition=partition), carried)
        return sent


class _Rebalance(RebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, router: Router) -> None:
        self.router = router

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.router.lock:
            for tp in revoked:
                self.router.pending.discard(tp)
                worker = self.router.workers.pop(tp, None)
                if worker is not None:
                    await worker.close()
            log.info("router.revoked", partitions=[f"{tp.topic}/{tp.partition}" for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # aiokafka sends no heartbeat until this returns, so the slow part (fencing,
        # rebuilding from the audit chain) happens in the run loop: hold the
        # partitions paused until their workers are ready.
        consumer = self.router.consumer
        assert consumer is not None
        fresh = [tp for tp in assigned if tp not in self.router.workers]
        if fresh:
            consumer.pause(*fresh)
            self.router.pending.update(fresh)
            log.info("router.joined", partitions=len(fresh), process_age=process_age())


class Router:
    """Consumes every outbox, routes each record, and keeps the workers of its partitions."""

    def __init__(
        self,
        kafka: KafkaSettings,
        view: PolicyView,
        signing_key: SigningKey,
        signing_key_id: str,
        *,
        tuning: RouterTuning | None = None,
        metrics: Metrics | None = None,
        clock: Clock = utc_now,
        sources: Sequence[Callable[[], PolicyView | None]] = (),
        clients: KafkaClients = AIOKAFKA,
    ) -> None:
        self.kafka = kafka
        self.clients = clients
        """Where its consumers and producers come from (``adapters.kafka_clients``)."""
        self.producer_factory = clients.producer
        """Makes the workers' transactional producers (a test may wrap them)."""
        self.view = view
        self.signing_key = signing_key
        self.signing_key_id = signing_key_id
        self.tuning = tuning or RouterTuning()
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.sources = sources
        self.lock = asyncio.Lock()
        self.workers: dict[TopicPartition, PartitionWorker] = {}
        self.consumer: Consumer | None = None
        self._published: set[tuple[str, StoreReference | None]] = set()
        self.feed_states = FeedStateLookup(kafka, clients)
        """What the router delivered to whom, read back to route hit reports."""
        self.delivered_hits = DeliveredHitsLookup(kafka, clients)
        """Which hit reports the router delivered to each origin, read back to route
        acknowledgements."""
        self.missing_topics: set[str] = set()
        """State topics found missing (each reported once)."""
        self._fresh: dict[str, tuple[int, float]] = {}
        """Partition counts of topics the consumer's metadata did not show, from a metadata
        answer asked afresh (``refresh``), with when it was asked (``time.monotonic``)."""
        self.pending: set[TopicPartition] = set()
        """Partitions assigned whose workers are not started yet (kept paused)."""
        self.delivering = False
        """Whether a transaction of this process committed a routed or quarantined record."""
        self.held_for_store: set[TopicPartition] = set()
        """Partitions whose routing waits for a trust store inside its validity window."""
        self._describe_metrics()

    def _describe_metrics(self) -> None:
        m = self.metrics
        m.describe("routed_total", "Outbox messages routed, by origin.")
        m.describe("delivered_total", "Copies written to partner feeds, by recipient.")
        m.describe("denied_total", "Participants denied a message, by reason.")
        m.describe("quarantined_total", "Outbox records quarantined, by reason.")
        m.describe("consumer_lag", "Records not yet routed, by outbox partition.")
        m.describe(
            "router_stage_seconds",
            "Seconds per committed transaction in each stage: check (decode, validate, "
            "signatures queued), decide (policy, outputs, and the wait for any signature "
            "not yet checked), send (queue, acknowledgements), "
            "commit (the transaction's end), transaction (all of it).",
        )
        m.describe("hits_routed_total", "Hit reports and acknowledgements delivered, by kind.")
        m.describe("erased_total", "Alerts whose state was tombstoned after grace, by origin.")
        m.describe(
            "audit_gap",
            "1 while an outbox partition is held unrouted because its audit chain lost records.",
        )
        m.describe(
            "trust_store_expired",
            "1 while routing is held because the trust store in force is past its validity.",
        )
        m.describe(
            "trust_store_held",
            "Outbox partitions held unrouted because the trust store in force expired.",
        )

    def store_expired(self, tp: TopicPartition, detail: str) -> None:
        """Note that ``tp`` is held for an expired trust store; log it when the hold begins."""
        if not self.held_for_store:
            governance = self.view.governance
            log.error(
                "router.trust_store_expired",
                detail=detail,
                serial=None if governance is None else governance.serial,
                advice="nothing is routed until a new governed store, signed as the store "
                "in force requires, replaces the trust store file",
            )
            self.metrics.set("trust_store_expired", 1)
        self.held_for_store.add(tp)
        self.metrics.set("trust_store_held", len(self.held_for_store))

    def store_valid(self, tp: TopicPartition) -> None:
        """Note that ``tp`` routes again under a valid trust store."""
        self.held_for_store.discard(tp)
        self.metrics.set("trust_store_held", len(self.held_for_store))
        if not self.held_for_store:
            self.metrics.set("trust_store_expired", 0)
            governance = self.view.governance
            log.info(
                "router.trust_store_valid",
                serial=None if governance is None else governance.serial,
            )

    def stage_seconds(self, **stages: float) -> None:
        """Add a committed transaction's time in each stage to ``router_stage_seconds``."""
        observe = self.metrics.observe
        for stage, seconds in stages.items():
            observe("router_stage_seconds", seconds, {"stage": stage})

    def count(self, counts: Counter[tuple[str, str, str]]) -> None:
        """Add a committed transaction's ``counts`` (by metric, label and value) to the metrics."""
        inc = self.metrics.inc
        for (name, label, value), amount in counts.items():
            inc(name, amount, labels={label: value})

    def _listed(self, topic: str) -> int:
        consumer = self.consumer
        partitions = consumer.partitions_for_topic(topic) if consumer is not None else None
        return len(partitions) if partitions else 0

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has (0 when unknown): from the consumer's metadata,
        or, where that does not show it, from the last answer ``refresh`` asked for."""
        listed = self._listed(topic)
        if listed:
            return listed
        fresh = self._fresh.get(topic)
        return 0 if fresh is None else fresh[0]

    async def refresh(self, topics: Iterable[str]) -> None:
        """Ask the broker afresh about those of ``topics`` the consumer's metadata does not
        show (one metadata answer for all of them), so that ``partition_count`` does not
        answer "no such topic" only because that metadata lags behind the cluster (just
        after a restart, or for up to ``metadata_max_age_ms`` after a partner's topics were
        provisioned). A topic found absent is asked about again after ``FRESH_FOR``.
        """
        consumer = self.consumer
        if consumer is None:
            return
        now = time.monotonic()
        unlisted = []
        for topic in topics:
            fresh = self._fresh.get(topic)
            if fresh is not None and (fresh[0] or now - fresh[1] < FRESH_FOR):
                continue
            if not self._listed(topic):
                unlisted.append(topic)
        if unlisted:
            counts = await fresh_partition_counts(consumer, unlisted)
            self._fresh.update((topic, (count, now)) for topic, count in counts.items())

    async def partition_count_now(self, topic: str) -> int:
        """``partition_count``, asked afresh first when the consumer's metadata does not
        show ``topic``: a reader is never told "nothing there" only because the metadata
        was late."""
        await self.refresh([topic])
        return self.partition_count(topic)

    async def start_pending(self) -> None:
        """Start workers for newly assigned partitions (fence, rebuild, seek), then resume them."""
        consumer = self.consumer
        assert consumer is not None
        began = time.monotonic()
        assigned = consumer.assignment()
        ready = [tp for tp in self.pending if tp in assigned and tp not in self.workers]
        self.pending.clear()
        workers = [
            PartitionWorker(self, tp, len(consumer.partitions_for_topic(tp.topic) or ()))
            for tp in ready
        ]
        await asyncio.gather(*(worker.start() for worker in workers))
        # Each seek asks for the group's committed offset, a round trip per partition: asked
        # together, not one after the other (which took a second for 12 partitions).
        routable = [worker for worker in workers if not worker.blocked]
        sought = await asyncio.gather(*map(self.resume, routable), return_exceptions=True)
        failures = {id(w): f for w, f in zip(routable, sought, strict=True) if f is not None}
        started = []
        for worker in workers:
            if worker.blocked:
                # Held, paused, until restarted with the gap accepted (see rebuild).
                self.workers[worker.tp] = worker
                continue
            try:
                failure = failures.get(id(worker))
                if failure is not None:
                    raise failure
                consumer.resume(worker.tp)
            except (AssertionError, IllegalStateError):
                # The subscription changed meanwhile (a new outbox appeared): the next
                # assignment brings this partition back, with a fresh worker.
                await worker.stop_producer()
                continue
            self.workers[worker.tp] = worker
            worker.launch()
            started.append(worker.tp)
        log.info(
            "router.assigned",
            partitions=[f"{tp.topic}/{tp.partition}" for tp in started],
            ready_ms=round((time.monotonic() - began) * 1000),
            process_age=process_age(),
        )

    async def publish_agreements(self, view: PolicyView) -> None:
        """Keep the view's set in the agreements topic, with the trust store it is routed
        under (``TRUST_STORE_HEADER``), so an auditor can re-check its decisions."""
        aset = view.agreements
        if (aset.digest, view.store) in self._published:
            return
        headers = [] if view.store is None else [(TRUST_STORE_HEADER, view.store.value())]
        producer = self.clients.producer(
            **self.kafka.client_kwargs(),
            **producer_size_kwargs(),
            acks="all",
            enable_idempotence=True,
        )
        await producer.start()
        try:
            await producer.send_and_wait(
                AGREEMENTS_TOPIC, aset.canonical_bytes(), key=aset.digest.encode(), headers=headers
            )
        finally:
            await producer.stop()
        self._published.add((aset.digest, view.store))

    async def _refresh_sources(self) -> None:
        for source in self.sources:
            view = source()
            if view is not None:
                await self.publish_agreements(view)
                self.view = view
                log.info("router.policy_changed", agreement_set=view.agreements.digest)

    async def _update_lag(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        for tp in list(self.workers):
            highwater = consumer.highwater(tp) if tp in assigned else None
            if highwater is not None:
                try:
                    lag = highwater - await consumer.position(tp)
                except (AssertionError, IllegalStateError):
                    continue  # reassigned while asking: the next round measures it
                self.metrics.set(
                    "consumer_lag", lag, labels={"partition": f"{tp.topic}/{tp.partition}"}
                )

    async def run(self, stop: asyncio.Event) -> None:
        """Route until ``stop`` is set, then finish the current transaction and leave."""
        # The agreement set must be in its topic before anything is routed under it, but
        # its producer's start need not hold up joining the group: it is published
        # meanwhile, and awaited before the first partition's worker starts.
        published = asyncio.ensure_future(self._publish_first())
        consumer = self.clients.consumer(
            **self.kafka.client_kwargs(),
            **consumer_size_kwargs(),
            group_id=self.tuning.group_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=int(self.tuning.topic_refresh * 1000),
            # Failover in seconds (docs/router.md, *Failover*): a dead member's partitions
            # move after the session timeout; a restarted static member gets them back at
            # once. The rebalance timeout is how long the group waits for the live members
            # to finish their transactions and rejoin.
            session_timeout_ms=int(self.tuning.session_timeout * 1000),
            heartbeat_interval_ms=int(self.tuning.heartbeat_interval * 1000),
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            group_instance_id=self.tuning.group_instance_id,
            max_poll_records=self.tuning.batch_size,
        )
        self.consumer = consumer
        consumer.subscribe(pattern=self.tuning.outbox_pattern, listener=_Rebalance(self))
        try:
            await consumer.start()
        except BaseException:
            published.cancel()
            await asyncio.gather(published, return_exceptions=True)
            raise
        last_refresh = time.monotonic()
        try:
            while not stop.is_set():
                if published.done():
                    published.result()  # a failure to publish stops the router
                if self.pending:
                    await published
                    async with self.lock:
                        await self.start_pending()
                batches = await consumer.getmany(timeout_ms=200, max_records=self.tuning.batch_size)
                await self._dispatch(batches)
                if time.monotonic() - last_refresh >= self.tuning.topic_refresh:
                    last_refresh = time.monotonic()
                    await self._refresh_sources()
                    await self._update_lag()
        finally:
            published.cancel()  # if not done yet; a failure was raised where it was awaited
            await asyncio.gather(published, return_exceptions=True)
            async with self.lock:
                for worker in self.workers.values():
                    await worker.close()
                self.workers.clear()
            await consumer.stop()
            await self.feed_states.close()
            await self.delivered_hits.close()
            self.consumer = None
            log.info("router.stopped")

    async def _publish_first(self) -> None:
        await self.publish_agreements(self.view)
        log.info("router.agreements_published", process_age=process_age())

    async def _dispatch(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Hand each partition's records to its worker (which holds back one too far behind)."""
        limit = self.tuning.batch_size
        for tp, records in batches.items():
            worker = self.workers.get(tp)
            if worker is not None and records:
                worker.enqueue(records, limit)
            # else: revoked between fetch and dispatch; the new owner resumes it
        for worker in list(self.workers.values()):
            task = worker.task
            if task is not None and task.done():
                failure = task.exception() if not task.cancelled() else None
                raise failure or KafkaError(f"routing of {worker.tp} stopped")

    async def resume(self, worker: PartitionWorker) -> None:
        """Seek ``worker``'s partition to the first record not yet routed (after fencing
        and rebuilding): past the last one its audit chain decided, or the group's
        committed offset if that is further on (a chain of an earlier deployment)."""
        consumer = self.consumer
        assert consumer is not None
        committed = await consumer.committed(worker.tp)
        worker.group_offset = committed or 0
        worker.group_offset_at = time.monotonic()
        position = max(worker.group_offset, worker.state.next_offset)
        if committed is None and position == 0:
            await consumer.seek_to_beginning(worker.tp)
        else:
            consumer.seek(worker.tp, position)
        worker.next_offset = position
