"""What the router delivered of an alert to a recipient, read back from the feed state topics.

The router writes, in each routing transaction, the copy it delivered to a feed's
compacted state topic (``bx.<R>.state.from.<O>``, keyed by alert id, on the partition the
key hashes to). A hit report from R on an alert of O is routed only if that state holds
the alert (``hit_routing.ReceivedAlert``): the router's own record of what it delivered,
wherever in the cluster the alert was routed. Each state partition asked about is read
(``read_committed``) up to its end as of the question, then kept and followed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Final

from aiokafka.errors import KafkaError as AioKafkaError

from border_exchange.adapters.kafka_clients import AIOKAFKA, Consumer, KafkaClients, TopicPartition
from border_exchange.adapters.kafka_settings import KafkaSettings, consumer_size_kwargs
from border_exchange.domain.catalog import Operation
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.hit_routing import ReceivedAlert
from border_exchange.errors import DecodeError, KafkaError

READ_TIMEOUT_SECONDS: Final = 30.0

Question = tuple[str, int, str]
"""A feed state topic, its partition and an alert id."""


class FeedStateLookup:
    """The latest copy of each alert in the feed states asked about, kept up to date."""

    def __init__(self, kafka: KafkaSettings, clients: KafkaClients = AIOKAFKA) -> None:
        self.kafka = kafka
        self.clients = clients
        self._consumer: Consumer | None = None
        self._tables: dict[TopicPartition, dict[str, ReceivedAlert | None]] = {}
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

    async def received_all(
        self, questions: Iterable[Question]
    ) -> dict[Question, ReceivedAlert | None]:
        """The latest copy committed to each state ``topic``/``partition`` of each alert id
        asked (None: none, or a tombstone); each partition is read up to its end once (one
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
                    (topic, partition, alert_id): self._tables[
                        TopicPartition(topic, partition)
                    ].get(alert_id)
                    for topic, partition, alert_id in asked
                }
        except AioKafkaError as exc:
            raise KafkaError(f"cannot read the feed states: {exc!r}") from exc

    async def _catch_up(self, consumer: Consumer, tp: TopicPartition, end: int) -> None:
        table = self._tables[tp]
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise KafkaError(f"feed state {tp.topic}/{tp.partition} not read to {end} in time")
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                if record.key is None:
                    continue
                key = record.key.decode("utf-8", "replace")
                if record.value is None:
                    table[key] = None  # erased after its grace: no longer in force
                    continue
                try:
                    header = decode_envelope(record.value).header
                except DecodeError:
                    continue  # the router writes only what it decoded; nothing else counts
                table[key] = ReceivedAlert(
                    header.version, header.alert_type, header.operation is Operation.CANCEL
                )
        self._positions[tp] = await consumer.position(tp)

    async def close(self) -> None:
        """Stop the consumer (it is started again on the next question)."""
        consumer, self._consumer = self._consumer, None
        self._tables.clear()
        self._positions.clear()
        if consumer is not None:
            await consumer.stop()
