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

from collections.abc import Callable
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

__all__ = [
    "AIOKAFKA",
    "Consumer",
    "ConsumerRecord",
    "KafkaClients",
    "Producer",
    "RebalanceListener",
    "TopicPartition",
]
