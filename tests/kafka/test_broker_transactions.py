"""The broker's transactions behave as the router relies on: committed is seen, aborted is not."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.conftest import KafkaCluster

pytestmark = pytest.mark.kafka


async def _read_all(kafka: KafkaCluster, topic: str, isolation: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        **kafka.admin.client_kwargs(),
        isolation_level=isolation,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            values.extend(r.value for r in batch.get(tp, []) if r.value is not None)
        return values
    finally:
        await consumer.stop()


async def test_committed_transaction_is_seen_and_aborted_one_is_not(
    kafka: KafkaCluster, topic: str
) -> None:
    producer = AIOKafkaProducer(
        **kafka.admin.client_kwargs(), transactional_id=f"bx.test.{uuid.uuid4().hex}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed-1")
            await producer.send(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-3")
    finally:
        await producer.stop()

    assert await _read_all(kafka, topic, "read_committed") == [
        b"committed-1",
        b"committed-2",
        b"committed-3",
    ]
    # The aborted record is in the log: only the isolation level hides it.
    assert b"aborted" in await _read_all(kafka, topic, "read_uncommitted")
