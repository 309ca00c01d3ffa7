"""What the router delivered, read back from topics it writes itself: the feed states
(which alerts a recipient received) and the hit topics (which hit reports an origin
received).

The router writes, in each routing transaction, the copy it delivered to a feed's
compacted state topic (``bx.<R>.state.from.<O>``, keyed by alert id, on the partition the
key hashes to). A hit report from R on an alert of O is routed only if that state holds
the alert (``hit_routing.ReceivedAlert``): the router's own record of what it delivered,
wherever in the cluster the alert was routed. Likewise an acknowledgement from O is
routed only if the report it answers was delivered to O: ``bx.<O>.hits`` (keyed by
alert id) holds it (``hit_routing.DeliveredHit``). Each partition asked about is read
(``read_committed``) up to its end as of the question, then kept and followed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Final, Generic, TypeVar

from aiokafka.errors import KafkaError as AioKafkaError

from border_exchange.adapters.kafka_clients import AIOKAFKA, Consumer, KafkaClients, TopicPartition
from border_exchange.adapters.kafka_settings import KafkaSettings, consumer_size_kwargs
from border_exchange.domain.catalog import Operation
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.hit_routing import DeliveredHit, ReceivedAlert
from border_exchange.domain.hits import MessageKind, decode_report, message_kind
from border_exchange.errors import DecodeError, KafkaError

READ_TIMEOUT_SECONDS: Final = 30.0

Question = tuple[str, int, str]
"""A topic, its partition and the entry's id (an alert id, a hit id)."""

V = TypeVar("V")

Entry = Callable[[bytes, bytes | None], "tuple[str, V | None] | None"]
"""From a record's key and value: the entry it sets (its id and what it holds, None for
a tombstone), or None when the record sets nothing."""


class PartitionTables(Generic[V]):
    """Entries of the partitions asked about, each read to its end and kept up to date."""

    def __init__(
        self, kafka: KafkaSettings, entry: Entry[V], what: str, clients: KafkaClients = AIOKAFKA
    ) -> None:
        self.kafka = kafka
        self.entry = entry
        self.what = what
        self.clients = clients
        self._consumer: Consumer | None = None
        self._tables: dict[TopicPartition, dict[str, V | None]] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()

    async def _started(self) -> Consumer:
        if self._consumer is None:
            consumer = self.clients.consumer(
                **self.kafka.client_kwargs(),
                **consumer_size_kwargs(),
                isolation_level="read_committed",
                enable_auto_commit=False,
                group_id=None,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def lookup(self, questions: Iterable[Question]) -> dict[Question, V | None]:
        """The latest entry committed to each ``topic``/``partition`` under each id asked
        (None: none, or a tombstone); each partition is read up to its end once (one
        offset request), however many ask about it."""
        asked = set(questions)
        tps = {TopicPartition(topic, partition) for topic, partition, _ in asked}
        try:
            async with self._lock:
                consumer = await self._started()
                fresh = tps - set(self._tables)
                if fresh:
                    for tp in fresh:
                        self._tables[tp] = {}
                        self._positions[tp] = 0
                    consumer.assign(list(self._tables))
                    for known, position in self._positions.items():
                        consumer.seek(known, position)
                if tps:
                    ends = await consumer.end_offsets(sorted(tps))
                    for tp in sorted(tps):
                        await self._catch_up(consumer, tp, ends[tp])
                return {
                    (topic, partition, key): self._tables[TopicPartition(topic, partition)].get(key)
                    for topic, partition, key in asked
                }
        except AioKafkaError as exc:
            raise KafkaError(f"cannot read {self.what}: {exc!r}") from exc

    async def _catch_up(self, consumer: Consumer, tp: TopicPartition, end: int) -> None:
        table = self._tables[tp]
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise KafkaError(f"{tp.topic}/{tp.partition} not read to {end} in time")
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                if record.key is None:
                    continue
                found = self.entry(record.key, record.value)
                if found is not None:
                    table[found[0]] = found[1]
        self._positions[tp] = await consumer.position(tp)

    async def close(self) -> None:
        """Stop the consumer (it is started again on the next question)."""
        consumer, self._consumer = self._consumer, None
        self._tables.clear()
        self._positions.clear()
        if consumer is not None:
            await consumer.stop()


def _received(key: bytes, value: bytes | None) -> tuple[str, ReceivedAlert | None] | None:
    alert_id = key.decode("utf-8", "replace")
    if value is None:
        return alert_id, None  # erased after its grace: no longer in force
    try:
        header = decode_envelope(value).header
    except DecodeError:
        return None  # the router writes only what it decoded; nothing else counts
    return alert_id, ReceivedAlert(
        header.version, header.alert_type, header.operation is Operation.CANCEL
    )


class FeedStateLookup(PartitionTables[ReceivedAlert]):
    """The latest copy of each alert in the feed states asked about (by alert id)."""

    def __init__(self, kafka: KafkaSettings, clients: KafkaClients = AIOKAFKA) -> None:
        super().__init__(kafka, _received, "the feed states", clients)

    async def received_all(
        self, questions: Iterable[Question]
    ) -> dict[Question, ReceivedAlert | None]:
        """What each feed state ``topic``/``partition`` holds of each alert id asked."""
        return await self.lookup(questions)


def _delivered(_: bytes, value: bytes | None) -> tuple[str, DeliveredHit | None] | None:
    if message_kind(value) is not MessageKind.HIT_REPORT:
        return None  # acknowledgements to this service's posts share the topic
    assert value is not None  # message_kind is None without a value
    try:
        report = decode_report(value)
    except DecodeError:
        return None  # the router writes only reports it verified
    return report.hit_id, DeliveredHit(report.reporter, report.post, report.alert_id)


class DeliveredHitsLookup(PartitionTables[DeliveredHit]):
    """The hit reports delivered to the origins' hit topics asked about (by hit id)."""

    def __init__(self, kafka: KafkaSettings, clients: KafkaClients = AIOKAFKA) -> None:
        super().__init__(kafka, _delivered, "the hit topics", clients)
