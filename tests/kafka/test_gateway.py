"""The gateway on a real broker: receipts, versions surviving a restart, batches, cancels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from nacl.signing import SigningKey

from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.catalog import AlertType, Operation, ParticipantKind
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.naming import outbox_topic
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import verify_trusted
from border_exchange.domain.trust import Participant, PublicKey, TrustStore
from border_exchange.errors import ValidationError
from border_exchange.services.gateway import Gateway
from tests.conftest import KafkaCluster
from tests.exchange import random_ids

pytestmark = pytest.mark.kafka

KEY = SigningKey(bytes(range(32)))


def participant() -> str:
    return random_ids(1)[0]


def trust_for(origin: str) -> TrustStore:
    now = datetime.now(UTC)
    key = PublicKey(
        origin,
        f"{origin}-1",
        bytes(KEY.verify_key),
        now - timedelta(days=1),
        now + timedelta(days=1),
    )
    service = Participant(origin, origin, ParticipantKind.NATIONAL_SERVICE, "active", (), (key,))
    return TrustStore({origin: service})


class _Cluster(Protocol):
    """A cluster with an administrator's settings: the session's, or one a test runs."""

    @property
    def admin(self) -> KafkaSettings: ...


async def outbox(
    kafka: _Cluster, origin: str, isolation_level: str = "read_committed"
) -> list[Envelope]:
    """Every committed message of ``origin``'s outbox (with ``read_uncommitted``: every
    message written there, aborted or not), in offset order."""
    consumer = AIOKafkaConsumer(
        **kafka.admin.client_kwargs(), isolation_level=isolation_level, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(outbox_topic(origin), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        envelopes: list[Envelope] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            envelopes.extend(decode_envelope(r.value) for r in batch.get(tp, []))
        return envelopes
    finally:
        await consumer.stop()


async def test_versions_follow_the_outbox_history_across_a_restart(kafka: KafkaCluster) -> None:
    origin = participant()
    await kafka.create_topic(name=outbox_topic(origin))
    trust = trust_for(origin)
    alert = sample_alert(AlertType.VEHICLE_NOTICE, origin=origin)
    async with Gateway(kafka.admin, origin, KEY, f"{origin}-1", trust) as gateway:
        created = await gateway.publish(alert)
        updated = await gateway.publish(alert.model_copy(update={"alert_id": created.alert_id}))
    assert (created.version, created.operation) == (1, Operation.CREATE)
    assert (updated.version, updated.operation) == (2, Operation.UPDATE)
    assert updated.offset == created.offset + 1 or updated.offset > created.offset

    async with Gateway(kafka.admin, origin, KEY, f"{origin}-1", trust) as restarted:
        again = await restarted.publish(alert.model_copy(update={"alert_id": created.alert_id}))
        cancelled = await restarted.cancel(created.alert_id, "vehicle recovered")
        with pytest.raises(ValidationError, match="was cancelled at version 4"):
            await restarted.cancel(created.alert_id, "twice")
    assert again.version == 3
    assert (cancelled.version, cancelled.operation) == (4, Operation.CANCEL)

    messages = await outbox(kafka, origin)
    assert [m.header.version for m in messages] == [1, 2, 3, 4]
    assert [m.header.message_id for m in messages] == [
        r.message_id for r in (created, updated, again, cancelled)
    ]
    for message in messages:
        verify_trusted(message, trust)
    assert messages[-1].sections == ()
    assert messages[-1].header.cancel_reason == "vehicle recovered"


async def test_a_batch_is_one_transaction_and_an_invalid_batch_publishes_nothing(
    kafka: KafkaCluster,
) -> None:
    origin = participant()
    await kafka.create_topic(name=outbox_topic(origin))
    alerts = [sample_alert(t, origin=origin) for t in AlertType]
    async with Gateway(kafka.admin, origin, KEY, f"{origin}-1", trust_for(origin)) as gateway:
        with pytest.raises(ValidationError, match=r"\[1\] origin: must be"):
            await gateway.publish_batch([alerts[0], sample_alert(AlertType.WANTED_PERSON)])
        receipts = await gateway.publish_batch(alerts)
    assert [r.version for r in receipts] == [1, 1, 1]
    assert [m.header.message_id for m in await outbox(kafka, origin)] == [
        r.message_id for r in receipts
    ]
