"""The seam to Kafka's clients: where every service gets its producers and consumers.

A service asks its ``KafkaClients`` for them instead of naming aiokafka's classes, so the
same service code runs against the broker (``AIOKAFKA``, what ``bootstrap`` wires) or
against the in-memory fake of the tests (``tests/fake_kafka.py``), and one set of
contract tests holds both to the same behaviour (``tests/contract/``).

The names a service needs besides the factories come from here too: ``Consumer`` and
``Producer`` (the types of what the factories make), ``TopicPartition``,
``ConsumerRecord`` and ``RebalanceListener`` (the base of a consumer group's
assignment callbacks). aiokafka's error types are imported from ``aiokafka.errors``
where they are caught: the fake raises the same ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener as RebalanceListener

Consumer: TypeAlias = AIOKafkaConsumer
"""What ``KafkaClients.consumer`` makes (aiokafka's consumer, or the fake's)."""
Producer: TypeAlias = AIOKafkaProducer
"""What ``KafkaClients.producer`` makes."""


@dataclass(frozen=True, slots=True)
class KafkaClients:
    """How to make a producer and a consumer, each from aiokafka's keyword options."""

    producer: Callable[..., Producer]
    consumer: Callable[..., Consumer]


AIOKAFKA: Final = KafkaClients(AIOKafkaProducer, AIOKafkaConsumer)
"""The real clients."""


async def fresh_partitions(consumer: Consumer, topic: str, wait: float = 10.0) -> set[int]:
    """The partitions of ``topic`` in a metadata answer asked now (empty when it has none),
    asking again for up to ``wait`` seconds for a topic just created to appear."""
    deadline = time.monotonic() + wait
    while True:
        # aiokafka's public metadata calls do not refresh what partitions_for_topic reads
        cluster = await consumer._client.fetch_all_metadata()
        partitions: set[int] | None = cluster.partitions_for_topic(topic)
        if partitions or time.monotonic() > deadline:
            return partitions or set()
        await asyncio.sleep(0.5)


async def fresh_partition_counts(consumer: Consumer, topics: Iterable[str]) -> dict[str, int]:
    """How many partitions each of ``topics`` has in one metadata answer asked now (0:
    the cluster has no such topic)."""
    cluster = await consumer._client.fetch_all_metadata()
    return {topic: len(cluster.partitions_for_topic(topic) or ()) for topic in topics}


__all__ = [
    "AIOKAFKA",
    "Consumer",
    "ConsumerRecord",
    "KafkaClients",
    "Producer",
    "RebalanceListener",
    "TopicPartition",
    "fresh_partition_counts",
    "fresh_partitions",
]
