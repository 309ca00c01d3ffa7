"""The seam to Kafka's clients: where a service gets its producers and consumers.

A service asks its ``KafkaClients`` for them instead of naming aiokafka's classes, so the
same service code runs against the broker (``AIOKAFKA``, the default) or against the
in-memory fake of the tests (``tests/fake_kafka.py``), and one set of contract tests
holds both to the same behaviour (``tests/contract/``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


@dataclass(frozen=True, slots=True)
class KafkaClients:
    """How to make a producer and a consumer, each from aiokafka's keyword options."""

    producer: Callable[..., AIOKafkaProducer]
    consumer: Callable[..., AIOKafkaConsumer]


AIOKAFKA: Final = KafkaClients(AIOKafkaProducer, AIOKafkaConsumer)
"""The real clients."""
