"""What the demo asks of the exchange from outside: HTTP, forbidden and oversized writes, audit."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError

from border_exchange.adapters.gateway_store import GatewayStore
from border_exchange.adapters.http_server import serving
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.post_store import PostStore
from border_exchange.demo.cast import (
    PARTICIPANTS,
    WAIT,
)
from border_exchange.domain import limits, naming
from border_exchange.domain.alerts import AlertInput
from border_exchange.domain.audit import AuditKind
from border_exchange.domain.audit_chain import verify_chain
from border_exchange.domain.audit_values import AuditEntry
from border_exchange.domain.catalog import Operation
from border_exchange.domain.encoding import decode_envelope, decode_record
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import KafkaError, StoreError
from border_exchange.services.auditor import (
    KafkaReader,
    Progress,
)
from border_exchange.services.gateway import Gateway, Receipt
from border_exchange.services.gateway_http import GatewayApi, create_app


async def publish_over_http(
    gateway: Gateway, alerts: Sequence[AlertInput], db: Path
) -> list[Receipt]:
    """Publish ``alerts`` as a national system would: ``POST /alerts`` to ``gateway serve``."""
    store = GatewayStore(db)
    token = store.add_client("incident-log")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    receipts: list[Receipt] = []
    try:
        app = create_app(GatewayApi(gateway, store))
        async with serving(app) as url, httpx.AsyncClient(base_url=url, headers=headers) as http:
            for alert in alerts:
                answer = await http.post(
                    "/alerts",
                    content=alert.model_dump_json(),
                    headers={"Idempotency-Key": alert.alert_id or uuid.uuid4().hex},
                )
                if answer.status_code != 202:
                    raise KafkaError(f"POST /alerts answered {answer.status_code}: {answer.text}")
                body = answer.json()
                receipts.append(
                    Receipt(
                        body["message_id"],
                        body["alert_id"],
                        body["version"],
                        body["partition"],
                        body["offset"],
                        Operation(body["operation"]),
                    )
                )
    finally:
        store.close()
    return receipts


async def refused_write(settings: KafkaSettings, topic: str) -> str:
    """Try to write one record to ``topic``; the broker's refusal, or KafkaError if it accepts."""
    producer = AIOKafkaProducer(**settings.client_kwargs(), request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(30):
            await producer.start()
            await producer.send_and_wait(topic, b"forged", key=b"forged")
    except TopicAuthorizationFailedError as exc:
        return type(exc).__name__
    finally:
        await producer.stop()
    raise KafkaError(f"{settings.username} could write to {topic}: the ACLs are not enforced")


async def oversized_write(settings: KafkaSettings, topic: str) -> tuple[int, int, int]:
    """Write 5 MB that gzip to a few kB straight into ``topic``, as a careless partner's
    own client may; its partition, offset and size."""
    value = b"\xc3\x01" + b"\0" * (5 * limits.MIB)
    producer = AIOKafkaProducer(
        **settings.client_kwargs(),
        acks="all",
        compression_type="gzip",
        max_request_size=8 * limits.MIB,
        request_timeout_ms=10_000,
    )
    try:
        async with asyncio.timeout(30):
            await producer.start()
            sent = await producer.send_and_wait(topic, value, key=b"oversized")
    finally:
        await producer.stop()
    return sent.partition, sent.offset, len(value)


async def wait_for_quarantine(
    settings: KafkaSettings, topic: str, partition: int, offset: int
) -> dict[str, Any]:
    """Wait for the router's quarantine record of ``topic``/``partition``/``offset``."""
    deadline = time.monotonic() + WAIT
    while True:
        async with KafkaReader(settings, Progress(every=1e9)) as reader:
            for tp in await reader.partitions(naming.QUARANTINE_TOPIC):
                for log in await reader.read(tp, 0, await reader.end(tp)):
                    _, record = decode_record(log.value)
                    source = (record["source_topic"], record["source_partition"])
                    if source == (topic, partition) and record["source_offset"] == offset:
                        return record
        if time.monotonic() > deadline:
            raise KafkaError(f"the router quarantined nothing of {topic} in {WAIT}s")
        await asyncio.sleep(0.5)


async def read_decisions(
    settings: KafkaSettings, trust: TrustStore, origins: Sequence[str]
) -> dict[str, AuditEntry]:
    """Every DECISION the router recorded in the audit trails of ``origins``, by message id."""
    found: dict[str, AuditEntry] = {}
    async with KafkaReader(settings, Progress(every=1e9)) as reader:
        for origin in origins:
            for tp in await reader.partitions(naming.audit_topic(origin)):
                logs = await reader.read(tp, 0, await reader.end(tp))
                check = verify_chain(tp.topic, tp.partition, logs, trust)
                for entry in check.entries:
                    if entry.kind == AuditKind.DECISION:
                        found[str(entry.record["message_id"])] = entry
    return found


async def wait_for_decisions(
    settings: KafkaSettings, trust: TrustStore, receipts: Sequence[Receipt]
) -> dict[str, AuditEntry]:
    """Wait until the router has decided every message of ``receipts``; their decisions."""
    wanted = {r.message_id for r in receipts}
    deadline = time.monotonic() + WAIT
    while True:
        decisions = await read_decisions(settings, trust, PARTICIPANTS)
        if wanted <= decisions.keys():
            return {m: decisions[m] for m in wanted}
        if time.monotonic() > deadline:
            missing = len(wanted - decisions.keys())
            raise KafkaError(f"the router decided nothing about {missing} message(s) in {WAIT}s")
        await asyncio.sleep(0.5)


async def outbox_envelope(settings: KafkaSettings, receipt: Receipt, origin: str) -> Envelope:
    """The message of ``receipt`` as it sits in ``origin``'s outbox (what the hub reads)."""
    tp = TopicPartition(naming.outbox_topic(origin), receipt.partition)
    async with KafkaReader(settings, Progress(every=1e9)) as reader:
        (log,) = await reader.read(tp, receipt.offset, receipt.offset + 1)
    return decode_envelope(log.value)


def backup_store(store: Path, to: Path) -> Path:
    """A copy of a post's content store alone (not its key store), as a backup takes it."""
    with (
        contextlib.closing(sqlite3.connect(store)) as live,
        contextlib.closing(sqlite3.connect(to)) as copy,
    ):
        live.backup(copy)
    return to


def backup_reads(copy: Path, keys: Path, origin: str, alert_id: str) -> bool:
    """Whether alert ``alert_id`` of ``origin`` in the backup ``copy`` still opens with the
    post's key store ``keys`` (False once the post destroyed its keys)."""
    with PostStore.open(copy, key_path=keys) as store:
        try:
            return store.get(origin, alert_id) is not None
        except StoreError:
            return False
