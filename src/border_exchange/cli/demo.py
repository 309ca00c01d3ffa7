"""``border-exchange demo``: start a local Kafka, show a record go through it, stop it."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_settings import KafkaSettings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="run the exchange end to end on a local Kafka, then stop everything",
        description="Starts a local Kafka cluster, runs the story, prints it, stops Kafka.",
    )
    demo.set_defaults(handler=_run)


async def _story(settings: KafkaSettings) -> None:
    topic = "bx.demo.hello"
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    print(f"created topic {topic}")
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all")
    await producer.start()
    try:
        value = f"border incident reported at Zemio crossing ({uuid.uuid4().hex[:8]})".encode()
        meta = await producer.send_and_wait(topic, value, key=b"demo")
    finally:
        await producer.stop()
    print(f"sent   partition {meta.partition} offset {meta.offset}: {value.decode()}")
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.value is not None
    print(f"read   partition {record.partition} offset {record.offset}: {record.value.decode()}")


def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print("starting a local Kafka (first run fetches the jars)...")
    info = kafka_launcher.start_cluster(1)
    try:
        print(f"Kafka ready at {info.client_bootstrap} in {time.monotonic() - started:.1f}s")
        admin = KafkaSettings(
            info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
        )
        asyncio.run(_story(admin))
    finally:
        kafka_launcher.stop_cluster(info, remove=True)
        print("Kafka stopped")
    return 0
