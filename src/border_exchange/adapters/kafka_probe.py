"""A readiness probe: metadata answered, and a record produced and consumed back."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.errors import TopicAlreadyExistsError

READY_TOPIC = "bx.hub.ready"


async def _round_trip(bootstrap: str, expected_brokers: int, deadline: float) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    while True:
        try:
            await admin.start()
            break
        except AioKafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        while True:
            cluster = await admin.describe_cluster()
            if len(cluster["brokers"]) >= expected_brokers:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {len(cluster['brokers'])} of {expected_brokers} brokers registered"
                )
            await asyncio.sleep(0.5)
        replication = min(expected_brokers, 3)
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(READY_TOPIC, 1, replication)])
    finally:
        await admin.close()

    payload = uuid.uuid4().bytes
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        while True:
            try:
                meta = await producer.send_and_wait(READY_TOPIC, payload)
                break
            except AioKafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        tp = TopicPartition(READY_TOPIC, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        records = await consumer.getmany(
            tp, timeout_ms=int(max(1.0, deadline - time.monotonic()) * 1000)
        )
        values = [r.value for r in records.get(tp, [])]
        if payload not in values:
            raise TimeoutError("the probe record was produced but not consumed back")
    finally:
        await consumer.stop()


def round_trip(bootstrap: str, expected_brokers: int = 1, timeout: float = 60.0) -> None:
    """Block until ``bootstrap`` answers metadata with all brokers and passes a round trip."""
    asyncio.run(_round_trip(bootstrap, expected_brokers, time.monotonic() + timeout))
