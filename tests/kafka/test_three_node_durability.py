"""With replication 3, min ISR 2 and acks=all, losing one broker loses no acknowledged record."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from border_exchange.adapters import kafka_launcher
from tests.conftest import KafkaCluster

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RECORDS = 3000


async def test_no_acknowledged_record_is_lost_when_a_broker_stops_mid_stream(
    kafka3: KafkaCluster,
) -> None:
    assert kafka3.info is not None
    topic = await kafka3.create_topic(
        partitions=3, replication=3, configs={"min.insync.replicas": "2"}
    )
    producer = AIOKafkaProducer(
        **kafka3.admin.client_kwargs(),
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=30000,
        retry_backoff_ms=200,
    )
    await producer.start()
    acknowledged: set[bytes] = set()
    victim = kafka3.info.nodes[1]
    stopping: asyncio.Task[None] | None = None
    try:
        for i in range(RECORDS):
            value = f"record-{i}".encode()
            await producer.send_and_wait(topic, value, key=value)
            acknowledged.add(value)
            if i == RECORDS // 3:
                # Stop a broker in the middle of the stream, in a thread so sends go on.
                stopping = asyncio.create_task(
                    asyncio.to_thread(kafka_launcher.stop_node, victim, 30.0)
                )
        assert stopping is not None
        await stopping
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        **kafka3.admin.client_kwargs(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    seen: set[bytes] = set()
    try:
        for _ in range(60):
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                seen.update(r.value for r in records if r.value is not None)
            if acknowledged <= seen:
                break
    finally:
        await consumer.stop()
    assert len(acknowledged) == RECORDS
    assert acknowledged - seen == set()
