"""An in-memory Kafka behind the services' seam (``adapters.kafka_clients``), for tests.

It keeps what the services' use of Kafka relies on, as the broker does it:

- topics of numbered partitions; keyed records placed by Kafka's default partitioner;
  record timestamps (the producer's, or the time of the send), looked up by
  ``offsets_for_times``; a log start offset that ``delete_records`` moves (retention);
- transactions (one open at a time per producer, the producers' open transactions
  interleaved in a partition as on the broker) whose records a ``read_committed``
  consumer sees only once committed, never when aborted, and nothing past the first
  record of a transaction still open (the last stable offset); each commit or abort
  taking an offset of its own (the broker's control marker), so offsets are not
  contiguous across transactions; a consumer group's offsets sent with a transaction
  and committed with it;
- fencing: a transactional producer that starts with the id of an earlier one aborts
  what that one left open, and the earlier one's next call raises ``ProducerFenced``;
- consumers assigned partitions by hand (positions from a seek, the group's committed
  offset, or ``auto_offset_reset``), or subscribed to topics or a pattern as the one
  member of their group: the assignment follows the topics that exist, and the
  listener hears of it before the next fetch; paused partitions are not fetched;
  a position before the log start raises ``OffsetOutOfRangeError`` under
  ``auto_offset_reset="none"``.

``tests/contract/`` runs the same tests against it and against the real broker, which
keeps the two in agreement. aiokafka's own error types are raised, so the services'
``except`` clauses hold for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import (
    IllegalStateError,
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    ProducerFenced,
    UnknownTopicOrPartitionError,
)
from aiokafka.structs import OffsetAndTimestamp

from border_exchange.adapters.kafka_clients import KafkaClients, TopicPartition
from border_exchange.domain.partitioning import expected_partition


@dataclass(frozen=True, slots=True)
class FakeRecord:
    """A record as a consumer sees it (the fields of aiokafka's ``ConsumerRecord`` used)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class FakeMetadata:
    """Where a sent record landed (``RecordMetadata``'s fields used)."""

    topic: str
    partition: int
    offset: int


@dataclass
class _Entry:
    record: FakeRecord | None  # None: a transaction marker
    timestamp: int
    state: str = "committed"  # "open", "committed" or "aborted"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class FakeKafka:
    """The cluster: topics and their partitions' logs, group offsets, producer epochs."""

    logs: dict[str, list[list[_Entry]]] = field(default_factory=dict)
    log_starts: dict[TopicPartition, int] = field(default_factory=dict)
    group_offsets: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    """Each consumer group's committed offsets."""
    epochs: dict[str, int] = field(default_factory=dict)
    """Each transactional id's current producer epoch."""
    producers: dict[str, FakeProducer] = field(default_factory=dict)
    """The producer holding each transactional id's current epoch."""
    unlisted: dict[str, int] = field(default_factory=dict)
    """Topics the metadata answers leave out, each for that many answers more: a broker's
    metadata lags behind the controller's (a topic just created is not shown yet)."""
    stale: set[str] = field(default_factory=set)
    """Topics a consumer's cached metadata (``partitions_for_topic``) does not show while
    a metadata answer asked afresh does: a client's metadata is refreshed only every
    ``metadata_max_age_ms`` (a topic provisioned since, or just after a restart)."""

    def create_topic(self, name: str, partitions: int = 1) -> str:
        """Create ``name`` with ``partitions`` empty partitions; its name."""
        self.logs.setdefault(name, [[] for _ in range(partitions)])
        return name

    @property
    def clients(self) -> KafkaClients:
        """Producers and consumers of this cluster, made from aiokafka's keyword options."""
        return KafkaClients(self._producer, self._consumer)

    def _producer(self, **options: Any) -> Any:
        limit = options.get("max_batch_size", 16384)
        return FakeProducer(self, options.get("transactional_id"), limit)

    def _consumer(self, *topics: str, **options: Any) -> Any:
        consumer = FakeConsumer(self, **options)
        if topics:
            consumer.subscribe(topics=list(topics))
        return consumer

    def partitions(self, topic: str) -> list[list[_Entry]]:
        """The logs of ``topic``'s partitions; KafkaError when it does not exist."""
        found = self.logs.get(topic)
        if found is None:
            raise UnknownTopicOrPartitionError(topic)
        return found

    def log(self, tp: TopicPartition) -> list[_Entry]:
        """The log of ``tp``."""
        logs = self.partitions(tp.topic)
        if not 0 <= tp.partition < len(logs):
            raise UnknownTopicOrPartitionError(f"{tp.topic}/{tp.partition}")
        return logs[tp.partition]

    def log_start(self, tp: TopicPartition) -> int:
        """The first offset ``tp`` still holds."""
        return self.log_starts.get(tp, 0)

    def high_watermark(self, tp: TopicPartition) -> int:
        """The offset after the last one written (open transactions included)."""
        return len(self.log(tp))

    def last_stable(self, tp: TopicPartition) -> int:
        """The first offset of an open transaction, or the log's end."""
        log = self.log(tp)
        return next((i for i, e in enumerate(log) if e.state == "open"), len(log))

    def delete_records(self, tp: TopicPartition, before: int) -> None:
        """Move the log start of ``tp`` to ``before`` (what retention does)."""
        self.log_starts[tp] = max(self.log_start(tp), min(before, self.high_watermark(tp)))

    def fence(self, transactional_id: str, producer: FakeProducer) -> int:
        """A new epoch for ``transactional_id``: the earlier holder's open work is aborted."""
        earlier = self.producers.get(transactional_id)
        if earlier is not None and earlier is not producer and earlier.open is not None:
            earlier.open.end(self, "aborted")
            earlier.open = None
        self.producers[transactional_id] = producer
        self.epochs[transactional_id] = self.epochs.get(transactional_id, 0) + 1
        return self.epochs[transactional_id]

    def metadata(self) -> FakeClusterMetadata:
        """What a metadata request answers now (without the ``unlisted`` topics)."""
        hidden = {topic for topic, answers in self.unlisted.items() if answers > 0}
        for topic in hidden:
            self.unlisted[topic] -= 1
        return FakeClusterMetadata(self, frozenset(hidden))


@dataclass
class _Transaction:
    entries: list[tuple[TopicPartition, _Entry]] = field(default_factory=list)
    offsets: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)

    def end(self, cluster: FakeKafka, outcome: str) -> None:
        for _, entry in self.entries:
            entry.state = outcome
        stamp = _now_ms()
        for tp in sorted({tp for tp, _ in self.entries}):
            cluster.log(tp).append(_Entry(None, stamp))  # the control marker takes an offset
        if outcome == "committed":
            for group, offsets in self.offsets.items():
                cluster.group_offsets.setdefault(group, {}).update(offsets)


class FakeBatch:
    """A record batch being built (``BatchBuilder``'s ``append``, with its size limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.records: list[tuple[bytes | None, bytes | None, int | None, list[Any]]] = []

    def append(
        self,
        *,
        key: bytes | None,
        value: bytes | None,
        timestamp: int | None,
        headers: Iterable[tuple[str, bytes]] = (),
    ) -> object | None:
        """Add the record; None (and nothing added) when the batch is full."""
        headers = list(headers)
        size = 24 + len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)
        if self.records and self.size + size > self.limit:
            return None
        self.records.append((key, value, timestamp, headers))
        self.size += size
        return object()


class FakeProducer:
    """A (transactional) producer: ``AIOKafkaProducer``'s methods the services call."""

    def __init__(
        self, cluster: FakeKafka, transactional_id: str | None, max_batch_size: int = 16384
    ) -> None:
        self.cluster = cluster
        self.transactional_id = transactional_id
        self.max_batch_size = max_batch_size
        self.open: _Transaction | None = None
        """The transaction open, if any."""
        self.epoch = 0
        self.started = False

    async def start(self) -> None:
        """Start; with a transactional id, fence every earlier producer of that id."""
        if self.transactional_id is not None:
            self.epoch = self.cluster.fence(self.transactional_id, self)
        self.started = True

    async def stop(self) -> None:
        if self.open is not None and not self._fenced():
            self.open.end(self.cluster, "aborted")
        self.open = None
        self.started = False

    def _fenced(self) -> bool:
        tid = self.transactional_id
        return tid is not None and self.cluster.epochs.get(tid) != self.epoch

    def _check(self) -> None:
        if not self.started:
            raise KafkaError("the producer is not started")
        if self._fenced():
            raise ProducerFenced("a producer with the same transactional id started since")

    async def begin_transaction(self) -> None:
        self._check()
        if self.transactional_id is None:
            raise IllegalStateError("not a transactional producer")
        if self.open is not None:
            raise IllegalStateError("a transaction is already open")
        self.open = _Transaction()

    async def commit_transaction(self) -> None:
        self._end("committed")

    async def abort_transaction(self) -> None:
        self._end("aborted")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Begin; commit when the block ends, abort when it raises."""
        await self.begin_transaction()
        try:
            yield
        except BaseException:
            if not self._fenced():
                await self.abort_transaction()
            raise
        await self.commit_transaction()

    async def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_id: str
    ) -> None:
        """Commit ``offsets`` for ``group_id`` with the open transaction."""
        self._check()
        if self.open is None:
            raise IllegalStateError("no transaction is open")
        self.open.offsets.setdefault(group_id, {}).update(offsets)

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Iterable[tuple[str, bytes]] = (),
    ) -> asyncio.Future[FakeMetadata]:
        """Append the record (open until the transaction ends); the future of its metadata."""
        self._check()
        if partition is None:
            count = len(self.cluster.partitions(topic))
            partition = expected_partition(key, count) or 0  # keyless: the first
        metadata = self._append(TopicPartition(topic, partition), key, value, timestamp_ms, headers)
        done: asyncio.Future[FakeMetadata] = asyncio.get_running_loop().create_future()
        done.set_result(metadata)
        return done

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> FakeMetadata:
        """``send``, awaited until written."""
        return await (await self.send(*args, **kwargs))

    def create_batch(self) -> FakeBatch:
        """An empty record batch."""
        return FakeBatch(self.max_batch_size)

    async def send_batch(
        self, batch: FakeBatch, topic: str, *, partition: int
    ) -> asyncio.Future[FakeMetadata]:
        """Append the batch's records to ``partition``; the future of the first's metadata."""
        self._check()
        tp = TopicPartition(topic, partition)
        placed = [self._append(tp, k, v, t, h) for k, v, t, h in batch.records]
        done: asyncio.Future[FakeMetadata] = asyncio.get_running_loop().create_future()
        done.set_result(placed[0])
        return done

    def _append(
        self,
        tp: TopicPartition,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None,
        headers: Iterable[tuple[str, bytes]],
    ) -> FakeMetadata:
        log = self.cluster.log(tp)
        offset = len(log)
        stamp = _now_ms() if timestamp_ms is None else timestamp_ms
        record = FakeRecord(tp.topic, tp.partition, offset, key, value, stamp, tuple(headers))
        entry = _Entry(record, stamp, "open" if self.open is not None else "committed")
        log.append(entry)
        if self.open is not None:
            self.open.entries.append((tp, entry))
        return FakeMetadata(tp.topic, tp.partition, offset)

    def _end(self, outcome: str) -> None:
        self._check()
        if self.open is None:
            raise IllegalStateError("no transaction is open")
        self.open.end(self.cluster, outcome)
        self.open = None


class FakeClusterMetadata:
    """The answer to a metadata request (``ClusterMetadata``'s methods used)."""

    def __init__(self, cluster: FakeKafka, hidden: frozenset[str] = frozenset()) -> None:
        self.cluster = cluster
        self.hidden = hidden

    def topics(self) -> set[str]:
        return set(self.cluster.logs) - self.hidden

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        logs = None if topic in self.hidden else self.cluster.logs.get(topic)
        return None if logs is None else set(range(len(logs)))


class _Client:
    def __init__(self, cluster: FakeKafka) -> None:
        self.cluster = cluster

    async def fetch_all_metadata(self) -> FakeClusterMetadata:
        return self.cluster.metadata()


class FakeConsumer:
    """A consumer: ``AIOKafkaConsumer``'s methods the services call."""

    def __init__(
        self,
        cluster: FakeKafka,
        *,
        group_id: str | None = None,
        isolation_level: str = "read_uncommitted",
        auto_offset_reset: str = "latest",
        max_poll_records: int | None = None,
        **_options: Any,
    ) -> None:
        self.cluster = cluster
        self.group_id = group_id
        self.committed_only = isolation_level == "read_committed"
        self.reset = auto_offset_reset
        self.max_poll_records = max_poll_records
        self._client = _Client(cluster)
        self._positions: dict[TopicPartition, int | None] = {}
        self._paused: set[TopicPartition] = set()
        self._subscription: tuple[frozenset[str], re.Pattern[str] | None] | None = None
        self._listener: Any = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._positions.clear()
        self._subscription = None

    # ---------------------------------------------------------------- metadata

    async def topics(self) -> set[str]:
        return self.cluster.metadata().topics()

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        if topic in self.cluster.stale:
            return None
        return self.cluster.metadata().partitions_for_topic(topic)

    # ---------------------------------------------------------------- assignment

    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | None = None,
        listener: Any = None,
    ) -> None:
        """Follow ``topics`` or the topics matching ``pattern``, as the group's one member."""
        self._subscription = (frozenset(topics), re.compile(pattern) if pattern else None)
        self._listener = listener

    def unsubscribe(self) -> None:
        self._subscription = None
        self._positions.clear()
        self._paused.clear()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._positions = dict.fromkeys(partitions)
        self._paused &= set(self._positions)

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    async def _rebalance(self) -> None:
        if self._subscription is None:
            return
        names, pattern = self._subscription
        wanted = {
            TopicPartition(topic, p)
            for topic, logs in self.cluster.logs.items()
            if topic in names or (pattern is not None and pattern.match(topic))
            for p in range(len(logs))
        }
        if wanted == set(self._positions):
            return
        revoked = sorted(self._positions)
        if self._listener is not None and revoked:
            await self._listener.on_partitions_revoked(revoked)
        self._positions = dict.fromkeys(wanted)
        self._paused.clear()
        if self._listener is not None:
            await self._listener.on_partitions_assigned(sorted(wanted))

    def _assigned(self, tp: TopicPartition) -> None:
        if tp not in self._positions:
            raise IllegalStateError(f"{tp} is not assigned")

    def pause(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._assigned(tp)
            self._paused.add(tp)

    def resume(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._assigned(tp)
            self._paused.discard(tp)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    # ---------------------------------------------------------------- positions

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._assigned(tp)
        self._positions[tp] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        assert partitions or self._positions, "No partitions are currently assigned"  # aiokafka's
        for tp in partitions or tuple(self._positions):
            self.seek(tp, self.cluster.log_start(tp))

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp in partitions or tuple(self._positions):
            self.seek(tp, self._end(tp))

    async def position(self, tp: TopicPartition) -> int:
        self._assigned(tp)
        found = self._positions[tp]
        if found is None:
            found = self._positions[tp] = self._reset(tp)
        return found

    def _reset(self, tp: TopicPartition) -> int:
        """Where an assigned partition with no position starts."""
        committed = self.cluster.group_offsets.get(self.group_id or "", {}).get(tp)
        if self.group_id is not None and committed is not None:
            return committed
        if self.reset == "earliest":
            return self.cluster.log_start(tp)
        if self.reset == "latest":
            return self._end(tp)
        raise NoOffsetForPartitionError(f"{tp} has no committed offset")

    async def committed(self, tp: TopicPartition) -> int | None:
        if self.group_id is None:
            raise IllegalStateError("committed() needs a group")
        return self.cluster.group_offsets.get(self.group_id, {}).get(tp)

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        if self.group_id is None:
            raise IllegalStateError("commit() needs a group")
        if offsets is None:
            offsets = {tp: await self.position(tp) for tp in self._positions}
        self.cluster.group_offsets.setdefault(self.group_id, {}).update(offsets)

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: self.cluster.log_start(tp) for tp in partitions}

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._end(tp) for tp in partitions}

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The first offset stamped at or after each time (markers count), below the end a
        reader of this isolation level sees; None when there is none."""
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, moment in timestamps.items():
            log = self.cluster.log(tp)
            end = self._end(tp)
            found[tp] = next(
                (
                    OffsetAndTimestamp(offset, log[offset].timestamp)
                    for offset in range(self.cluster.log_start(tp), end)
                    if log[offset].timestamp >= moment
                ),
                None,
            )
        return found

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.cluster.high_watermark(tp) if tp in self._positions else None

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return self.cluster.last_stable(tp) if tp in self._positions else None

    # ---------------------------------------------------------------- fetching

    async def getmany(
        self,
        *partitions: TopicPartition,
        timeout_ms: int = 0,
        max_records: int | None = None,
    ) -> dict[TopicPartition, list[FakeRecord]]:
        """What is readable from each partition's position to its end (for ``read_committed``,
        the last stable offset), skipping markers and, when reading committed, aborted records;
        at most ``max_records`` in all."""
        await self._rebalance()
        left = max_records or self.max_poll_records or 500
        found: dict[TopicPartition, list[FakeRecord]] = {}
        for tp in partitions or tuple(sorted(self._positions)):
            if tp in self._paused or tp not in self._positions or left <= 0:
                continue
            start = await self.position(tp)
            if start < self.cluster.log_start(tp):
                if self.reset == "none":
                    raise OffsetOutOfRangeError({tp: start})
                start = self._reset(tp) if self.reset == "latest" else self.cluster.log_start(tp)
            log = self.cluster.log(tp)
            end = self._end(tp)
            records: list[FakeRecord] = []
            at = start
            while at < end and len(records) < left:
                entry = log[at]
                at += 1
                if entry.record is None or (self.committed_only and entry.state == "aborted"):
                    continue
                records.append(entry.record)
            while at < end and log[at].record is None:  # a marker is passed, as on the broker
                at += 1
            self._positions[tp] = at
            left -= len(records)
            if records:
                found[tp] = records
        if not found:
            await asyncio.sleep(min(timeout_ms, 10) / 1000)
        return found

    def _end(self, tp: TopicPartition) -> int:
        if self.committed_only:
            return self.cluster.last_stable(tp)
        return self.cluster.high_watermark(tp)
