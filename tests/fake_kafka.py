"""An in-memory Kafka behind the services' seam (``adapters.kafka_clients``), for tests.

It keeps what the gateway's use of Kafka relies on, as the broker does it: topics of
numbered partitions; keyed records placed by Kafka's default partitioner; transactions
whose records a ``read_committed`` consumer sees only once committed, and never when
aborted; each commit or abort taking an offset of its own (the broker's control marker),
so offsets are not contiguous across transactions. ``tests/contract/`` runs the same
tests against it and against the real broker, which keeps the two in agreement.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError

from border_exchange.adapters.kafka_clients import KafkaClients
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
    state: str = "committed"  # "open", "committed" or "aborted"


@dataclass
class FakeKafka:
    """The cluster: topics and their partitions' logs."""

    logs: dict[str, list[list[_Entry]]] = field(default_factory=dict)

    def create_topic(self, name: str, partitions: int = 1) -> str:
        """Create ``name`` with ``partitions`` empty partitions; its name."""
        self.logs.setdefault(name, [[] for _ in range(partitions)])
        return name

    @property
    def clients(self) -> KafkaClients:
        """Producers and consumers of this cluster, made from aiokafka's keyword options."""
        return KafkaClients(self._producer, self._consumer)

    def _producer(self, **options: Any) -> Any:
        return FakeProducer(self, options.get("transactional_id"))

    def _consumer(self, **options: Any) -> Any:
        return FakeConsumer(self, options.get("isolation_level", "read_uncommitted"))

    def partitions(self, topic: str) -> list[list[_Entry]]:
        """The logs of ``topic``'s partitions; KafkaError when it does not exist."""
        found = self.logs.get(topic)
        if found is None:
            raise UnknownTopicOrPartitionError(topic)
        return found

    def last_stable(self, tp: TopicPartition) -> int:
        """The first offset of an open transaction, or the log's end."""
        log = self.partitions(tp.topic)[tp.partition]
        return next((i for i, e in enumerate(log) if e.state == "open"), len(log))


class FakeProducer:
    """A transactional producer (``AIOKafkaProducer``'s methods the services call)."""

    def __init__(self, cluster: FakeKafka, transactional_id: str | None) -> None:
        self.cluster = cluster
        self.transactional_id = transactional_id
        self._open: list[tuple[str, int]] | None = None
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        if self._open is not None:
            self._end("aborted")
        self.started = False

    async def begin_transaction(self) -> None:
        if self._open is not None:
            raise KafkaError("a transaction is already open")
        self._open = []

    async def commit_transaction(self) -> None:
        self._end("committed")

    async def abort_transaction(self) -> None:
        self._end("aborted")

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Iterable[tuple[str, bytes]] = (),
    ) -> asyncio.Future[FakeMetadata]:
        """Append the record (open until the transaction ends); the future of its metadata."""
        if not self.started:
            raise KafkaError("the producer is not started")
        logs = self.cluster.partitions(topic)
        if partition is None:
            partition = expected_partition(key, len(logs)) or 0  # keyless: the first
        log = logs[partition]
        offset = len(log)
        stamp = int(time.time() * 1000)
        record = FakeRecord(topic, partition, offset, key, value, stamp, tuple(headers))
        log.append(_Entry(record, "open" if self._open is not None else "committed"))
        if self._open is not None:
            self._open.append((topic, partition))
        done: asyncio.Future[FakeMetadata] = asyncio.get_running_loop().create_future()
        done.set_result(FakeMetadata(topic, partition, offset))
        return done

    def _end(self, outcome: str) -> None:
        if self._open is None:
            raise KafkaError("no transaction is open")
        for topic, partition in sorted(set(self._open)):
            log = self.cluster.partitions(topic)[partition]
            for entry in log:
                if entry.state == "open":
                    entry.state = outcome
            log.append(_Entry(None))  # the control marker takes an offset
        self._open = None


class _Metadata:
    def __init__(self, cluster: FakeKafka) -> None:
        self.cluster = cluster

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        logs = self.cluster.logs.get(topic)
        return None if logs is None else set(range(len(logs)))


class _Client:
    def __init__(self, cluster: FakeKafka) -> None:
        self.cluster = cluster

    async def fetch_all_metadata(self) -> _Metadata:
        return _Metadata(self.cluster)


class FakeConsumer:
    """A consumer of assigned partitions (``AIOKafkaConsumer``'s methods the services call)."""

    def __init__(self, cluster: FakeKafka, isolation_level: str) -> None:
        self.cluster = cluster
        self.committed_only = isolation_level == "read_committed"
        self._client = _Client(cluster)
        self._positions: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return _Metadata(self.cluster).partitions_for_topic(topic)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._positions = dict.fromkeys(partitions, 0)

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._positions[tp] = 0

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._positions[tp] = offset

    async def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._end(tp) for tp in partitions}

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0
    ) -> dict[TopicPartition, list[FakeRecord]]:
        """What is readable from each partition's position to its end (for ``read_committed``,
        the last stable offset), skipping markers and, when reading committed, aborted records."""
        found: dict[TopicPartition, list[FakeRecord]] = {}
        for tp in partitions or tuple(self._positions):
            log = self.cluster.partitions(tp.topic)[tp.partition]
            end = self._end(tp)
            records = [
                entry.record
                for entry in log[self._positions[tp] : end]
                if entry.record is not None
                and not (self.committed_only and entry.state == "aborted")
            ]
            self._positions[tp] = max(self._positions[tp], end)
            if records:
                found[tp] = records
        if not found:
            await asyncio.sleep(min(timeout_ms, 10) / 1000)
        return found

    def _end(self, tp: TopicPartition) -> int:
        if self.committed_only:
            return self.cluster.last_stable(tp)
        return len(self.cluster.partitions(tp.topic)[tp.partition])
