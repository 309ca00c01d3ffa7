"""The auditor against a real broker: a routed period verifies clean; tampering is located.

The router's output is produced here with the same domain functions the router uses
(``RoutedWorld``), written in Kafka transactions to fresh per-test topics of a
unique origin, then an administrator tampers and the auditor replays.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from border_exchange.domain.agreements import AgreementSet
from border_exchange.domain.audit_values import LogRecord, Verdict, ViolationCode, Window
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.naming import audit_topic, feed_topic, outbox_topic
from border_exchange.domain.policy import PolicyIndex
from border_exchange.domain.trust import Participant, TrustStore
from border_exchange.services import auditor
from border_exchange.services.auditor import Progress, ReplayRequest, replay
from tests.conftest import KafkaCluster
from tests.exchange import random_ids
from tests.unit.test_audit_verify import (
    AGREEMENTS,
    KEYS,
    TRUST,
    RoutedWorld,
    reencoded,
    signed_set,
)

pytestmark = pytest.mark.kafka


def _origin() -> str:
    return random_ids(1, prefix="Q")[0]


def _trust(origin: str) -> TrustStore:
    caf = TRUST.participants["CAF"]
    key = dataclasses.replace(caf.keys[0], owner=origin, key_id=f"{origin}-2026")
    participants = dict(TRUST.participants)
    participants[origin] = Participant(origin, origin, caf.kind, "active", (), (key,))
    return TrustStore(participants, TRUST.hub)


KNOWN_SETS: dict[str, AgreementSet] = {}
"""The agreement sets the worlds decided under, as the router would have published them."""


class _Origin(RoutedWorld):
    """A world whose origin is a fresh participant id, with CAF's key and agreements."""

    def __init__(self, origin: str) -> None:
        KEYS.setdefault(origin, KEYS["CAF"])
        aset = signed_set(AGREEMENTS.format(status="active").replace("CAF", origin))
        super().__init__(origin, aset)
        self.index = PolicyIndex.build(aset, (origin, "COD", "SSD"))
        KNOWN_SETS[aset.digest] = aset


async def _write(kafka: KafkaCluster, logs: list[LogRecord]) -> None:
    producer = AIOKafkaProducer(
        **kafka.admin.client_kwargs(), transactional_id=f"bx.test.{uuid.uuid4().hex}"
    )
    await producer.start()
    try:
        for log in logs:  # one transaction each: record then marker, offsets 0, 2, 4, ...
            async with producer.transaction():
                await producer.send(
                    log.topic,
                    log.value,
                    key=log.key,
                    partition=0,
                    headers=list(log.headers),
                    timestamp_ms=int(log.timestamp.timestamp() * 1000),
                )
    finally:
        await producer.stop()


async def _routed(kafka: KafkaCluster) -> tuple[_Origin, Window]:
    origin = _origin()
    world = _Origin(origin)
    now = datetime.now(UTC).replace(microsecond=0)
    world.clock = now
    for _ in range(4):
        world.route(world.seal())
    world.checkpoint()
    for topic in (outbox_topic(origin), audit_topic(origin)):
        await kafka.create_topic(name=topic)
    for recipient in ("COD", "SSD"):
        await kafka.create_topic(name=feed_topic(recipient, origin))
    for logs in (world.outbox, world.audit, *world.feeds.values()):
        await _write(kafka, list(logs))
    return world, Window(now - timedelta(minutes=1), now + timedelta(minutes=10))


async def _verdict(kafka: KafkaCluster, world: RoutedWorld, window: Window) -> Verdict:
    return await replay(
        kafka.admin,
        _trust(world.origin),
        ReplayRequest(window, participant=world.origin),
        history=None,
        progress=Progress(every=1e9),
    )


@pytest.fixture
def agreements_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agreement set the world decided under, as the router would have published it."""

    async def sets(*_: object) -> dict[str, AgreementSet]:
        return KNOWN_SETS

    monkeypatch.setattr(auditor, "load_agreement_sets", sets)


async def test_a_routed_period_verifies_clean(kafka: KafkaCluster, agreements_known: None) -> None:
    world, window = await _routed(kafka)

    verdict = await _verdict(kafka, world, window)

    assert verdict.clean, verdict.violations
    assert verdict.stats.decisions == 4


async def test_a_record_written_straight_into_a_partner_feed_is_located(
    kafka: KafkaCluster, agreements_known: None
) -> None:
    world, window = await _routed(kafka)
    forged = world.seal()
    topic = feed_topic("COD", world.origin)
    await _write(
        kafka,
        [LogRecord(topic, 0, 0, datetime.now(UTC), encode_envelope(forged), b"x")],
    )

    verdict = await _verdict(kafka, world, window)

    (violation,) = verdict.violations
    assert (violation.code, violation.topic) == (ViolationCode.FEED_UNAUTHORISED, topic)
    assert violation.offset > 0


async def test_an_audit_record_appended_with_a_wrong_prev_hash_is_located(
    kafka: KafkaCluster, agreements_known: None
) -> None:
    world, window = await _routed(kafka)
    forged = reencoded(world.audit[1], seq=len(world.audit), prev_hash=bytes(32))
    await _write(kafka, [forged])

    verdict = await _verdict(kafka, world, window)

    broken = [v for v in verdict.violations if v.code is ViolationCode.CHAIN_BROKEN]
    assert [(v.topic, v.partition) for v in broken] == [(audit_topic(world.origin), 0)]
    assert broken[0].offset > max(log.offset for log in world.audit)


async def test_a_delivery_whose_feed_record_is_missing_is_located(
    kafka: KafkaCluster, agreements_known: None
) -> None:
    origin = _origin()
    world = _Origin(origin)
    now = datetime.now(UTC).replace(microsecond=0)
    world.clock = now
    for _ in range(3):
        world.route(world.seal())
    for topic in (outbox_topic(origin), audit_topic(origin)):
        await kafka.create_topic(name=topic)
    for recipient in ("COD", "SSD"):
        await kafka.create_topic(name=feed_topic(recipient, origin))
    dropped = world.feeds[feed_topic("SSD", origin)].pop(1)  # never written
    for logs in (world.outbox, world.audit, *world.feeds.values()):
        await _write(kafka, list(logs))

    verdict = await _verdict(kafka, world, Window(now, now + timedelta(minutes=10)))

    (violation,) = verdict.violations
    assert violation.code is ViolationCode.FEED_MISSING
    assert violation.topic == audit_topic(origin)
    assert dropped.topic in violation.detail


async def test_a_read_leaves_no_partition_assigned(kafka: KafkaCluster) -> None:
    # An assigned partition keeps a fetch long-polling, and every offset lookup of the
    # replay would queue behind it on the broker connection.
    world, _ = await _routed(kafka)
    async with auditor.KafkaReader(kafka.admin, Progress(every=1e9)) as reader:
        tp = TopicPartition(audit_topic(world.origin), 0)

        records = await reader.read(tp, 0, await reader.end(tp))

        assert len(records) == len(world.audit)
        assert reader.consumer.assignment() == set()
