"""No record stalls the router or costs a delivery: oversized, malformed, refused by the broker.

Each test writes what a hostile or careless partner could write straight into its
outbox (its ACL allows that), then a good alert on the same partition: the bad record
is quarantined once with its reason, the good one is delivered once, and the
auditor's replay of the period is clean.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import NotEnoughReplicasError
from structlog.testing import capture_logs

from border_exchange.domain import limits, naming
from border_exchange.domain.alerts import AlertInput, WantedPersonAlert
from border_exchange.domain.audit_values import Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.partitioning import expected_partition
from border_exchange.services.auditor import Progress, ReplayRequest, replay
from tests.conftest import KafkaCluster
from tests.exchange import PARTITIONS, Exchange, make_exchange, running

pytestmark = pytest.mark.kafka

AGREEMENTS = """
version: "sizes-test"
agreements:
  - id: A-B
    parties: [P0, P1]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: P0
        to: P1
        types:
          WANTED_PERSON: {sections: all, max_handling: H2}
"""


def _on_partition(ex: Exchange, origin: str, partition: int, **changes: Any) -> AlertInput:
    """A sample wanted-person alert from ``origin`` whose id lands on outbox ``partition``."""
    while True:
        alert = ex.alert(AlertType.WANTED_PERSON, origin, **changes)
        assert alert.alert_id is not None
        if expected_partition(alert.alert_id.encode(), PARTITIONS) == partition:
            return alert


def _with_photo(alert: AlertInput, photo: bytes) -> AlertInput:
    """``alert`` with ``photo``, past the model's checks (as a partner's own code could)."""
    assert isinstance(alert, WantedPersonAlert)
    sections = alert.sections
    assert sections.photo is not None
    big = sections.photo.model_copy(update={"data": photo})
    return alert.model_copy(update={"sections": sections.model_copy(update={"photo": big})})


async def _write_raw(
    ex: Exchange, topic: str, partition: int, records: list[tuple[bytes, bytes]], gzip: bool
) -> None:
    """Write ``records`` (key, value) to ``partition`` of ``topic`` as a partner's own
    client may: gzip-compressed, the broker checks the compressed batch, not the value."""
    producer = AIOKafkaProducer(
        **ex.settings.client_kwargs(),
        acks="all",
        compression_type="gzip" if gzip else None,
        max_request_size=8 * limits.MIB,
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


async def _quarantined(ex: Exchange, outbox: str) -> list[dict[str, Any]]:
    records = [decode_record(v)[1] for v in await ex.read(naming.QUARANTINE_TOPIC)]
    return [r for r in records if r["source_topic"] == outbox]


async def _clean_replay(ex: Exchange, started: datetime) -> None:
    window = Window(started - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    for participant in ex.ids:
        verdict = await replay(
            ex.settings,
            ex.sandbox.trust,
            ReplayRequest(window, participant=participant),
            progress=Progress(every=1e9),
        )
        assert verdict.clean, verdict.violations


async def test_oversized_and_malformed_records_are_quarantined_once_and_the_partition_goes_on(
    kafka: KafkaCluster,
) -> None:
    started = datetime.now(UTC)
    ex = await make_exchange(kafka, 2, AGREEMENTS)
    a, b = ex.ids
    outbox = naming.outbox_topic(a)
    first, last = (ex.seal(_on_partition(ex, a, 1)) for _ in range(2))
    photo = ex.seal(_with_photo(_on_partition(ex, a, 1), b"\xff" * (5 * limits.MIB)))
    hostile = [
        # 5 MB that compress to a few kilobytes: the broker takes them
        (b"compressible", b"\xc3\x01" + b"\0" * (5 * limits.MIB)),
        # just under the broker's record limit, uncompressed
        (b"near-the-limit", os.urandom(1_048_420)),
        # a validly signed alert with a 5 MB photo, past the gateway's check
        (photo.header.alert_id.encode(), encode_envelope(photo)),
        # not an envelope at all, as large as an alert may be
        (b"malformed", b"\xc3\x01" + os.urandom(limits.MAX_ALERT_BYTES - 2)),
    ]
    await ex.publish(first)
    await _write_raw(ex, outbox, 1, hostile[:1], gzip=True)
    await _write_raw(ex, outbox, 1, hostile[1:2], gzip=False)
    await _write_raw(ex, outbox, 1, hostile[2:], gzip=True)
    await ex.publish(last)

    async with running(ex.router()):
        delivered = await ex.feed(b, a, expect=2)

    assert [e.header.message_id for e in delivered] == [
        first.header.message_id,
        last.header.message_id,
    ]
    quarantined = await _quarantined(ex, outbox)
    by_key = {r["original_key"]: r for r in quarantined}
    assert len(quarantined) == len(hostile) == len(by_key)  # each once
    assert Counter(r["reason"] for r in quarantined) == {"TOO_LARGE": 3, "MALFORMED": 1}
    assert by_key[b"malformed"]["reason"] == "MALFORMED"
    assert by_key[photo.header.alert_id.encode()]["reason"] == "TOO_LARGE"
    for key, value in hostile:
        record = by_key[key]
        assert record["original_value_length"] == len(value)
        assert record["original_value_sha256"] == hashlib.sha256(value).digest()
        assert record["original_value"] == value[: limits.QUARANTINE_PREFIX_BYTES]
    await _clean_replay(ex, started)


async def _shrink(ex: Exchange, topic: str, max_bytes: int) -> None:
    admin = AIOKafkaAdminClient(**ex.settings.client_kwargs())
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(max_bytes)}
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()


async def test_a_copy_the_feed_refuses_quarantines_its_record_and_the_next_is_delivered(
    kafka: KafkaCluster,
) -> None:
    # A feed that holds less than the contract promises (an operator's mistake): the
    # broker refuses the copy of a large alert, which no retry cures.
    started = datetime.now(UTC)
    ex = await make_exchange(kafka, 2, AGREEMENTS)
    a, b = ex.ids
    await _shrink(ex, naming.feed_topic(b, a), 64 * limits.KIB)
    large = ex.seal(_with_photo(_on_partition(ex, a, 2), os.urandom(200 * limits.KIB)))
    small = [ex.seal(_on_partition(ex, a, 2)) for _ in range(3)]
    await ex.publish(small[0], large, *small[1:])

    with capture_logs() as logs:
        async with running(ex.router()):
            delivered = await ex.feed(b, a, expect=3)
            quarantined = await _quarantined(ex, naming.outbox_topic(a))

    assert [e.header.message_id for e in delivered] == [e.header.message_id for e in small]
    assert len(quarantined) == 1
    assert quarantined[0]["reason"] == "UNDELIVERABLE"
    assert quarantined[0]["message_id"] == large.header.message_id
    assert "MESSAGE_SIZE_TOO_LARGE" in quarantined[0]["detail"]
    assert naming.feed_topic(b, a) in quarantined[0]["detail"]
    routed = [e["message_id"] for e in logs if e["event"] == "router.routed"]
    assert sorted(routed) == sorted(e.header.message_id for e in small)  # committed ones only
    # A refused batch of several records' copies is retried a record at a time until
    # the one to blame is found; only that one is quarantined.
    refusals = [e for e in logs if e["event"] == "router.copy_refused"]
    offset = quarantined[0]["source_offset"]
    assert refusals[-1]["offsets"] == [offset]
    assert all(offset in r["offsets"] for r in refusals)
    await _clean_replay(ex, started)


class _FailOnce(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """A producer whose first record batch for ``feed`` fails, never sent, as if the
    broker had answered NOT_ENOUGH_REPLICAS for it."""

    feed: ClassVar[str] = ""
    failed: ClassVar[list[str]] = []

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if topic == _FailOnce.feed and not _FailOnce.failed:
            _FailOnce.failed.append(topic)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_exception(NotEnoughReplicasError())
            return future
        result: asyncio.Future[Any] = await super().send_batch(batch, topic, partition=partition)
        return result


async def test_a_transaction_with_a_failed_send_aborts_and_the_message_is_delivered_once(
    kafka: KafkaCluster,
) -> None:
    started = datetime.now(UTC)
    ex = await make_exchange(kafka, 2, AGREEMENTS)
    a, b = ex.ids
    envelopes = [ex.seal(_on_partition(ex, a, 0)) for _ in range(3)]
    await ex.publish(*envelopes)
    _FailOnce.failed.clear()
    _FailOnce.feed = naming.feed_topic(b, a)
    router = ex.router()
    router.producer_factory = _FailOnce

    with capture_logs() as logs:
        async with running(router):
            delivered = await ex.feed(b, a, expect=3)
            await asyncio.sleep(1.0)  # a duplicate would have time to arrive
            delivered = await ex.feed(b, a)

    assert _FailOnce.failed == [naming.feed_topic(b, a)]
    events = [e["event"] for e in logs]
    assert events.count("router.batch_aborted") == 1
    ids = [e.header.message_id for e in delivered]
    assert sorted(ids) == sorted(e.header.message_id for e in envelopes)  # each exactly once
    routed = [e["message_id"] for e in logs if e["event"] == "router.routed"]
    assert sorted(routed) == sorted(ids)  # logged once each, after the commit
    assert router.metrics.value("routed_total", {"origin": a}) == len(envelopes)
    # Each committed transaction's stages are timed; the aborted one is not counted.
    stages = ("check", "decide", "send", "commit", "transaction")
    timed = {s: router.metrics.value("router_stage_seconds", {"stage": s}) for s in stages}
    assert timed["transaction"] >= 1
    assert set(timed.values()) == {timed["transaction"]}
    await _clean_replay(ex, started)
