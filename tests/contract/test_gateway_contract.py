"""The gateway's contract with Kafka, run twice: against the in-memory fake and the real broker.

Each test takes an ``outbox``: a participant whose outbox (and outbox state) exists on
one ``side`` (``conftest.py``), the clients to reach it, and a reader of what a
``read_committed`` consumer sees there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from border_exchange.adapters.kafka_clients import KafkaClients, TopicPartition
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.catalog import AlertType, Operation
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.naming import outbox_state_topic, outbox_topic
from border_exchange.domain.partitioning import expected_partition
from border_exchange.domain.samples import sample_alert
from border_exchange.errors import ValidationError
from border_exchange.services.gateway import Gateway
from tests.contract.conftest import Side
from tests.exchange import random_ids
from tests.kafka.test_gateway import KEY, trust_for  # one participant, one key
from tests.waiting import eventually

PARTITIONS = 3


@dataclass
class Outbox:
    """A participant's outbox on one side of the contract."""

    origin: str
    settings: KafkaSettings
    clients: KafkaClients

    def gateway(self) -> Gateway:
        """A gateway of ``origin`` over these clients."""
        return Gateway(
            self.settings, self.origin, KEY, f"{self.origin}-1", trust_for(self.origin),
            clients=self.clients,
        )  # fmt: skip

    async def committed(self, topic: str | None = None) -> list[tuple[int, int, Envelope]]:
        """Every committed record of the outbox (or ``topic``): partition, offset, envelope."""
        consumer: Any = self.clients.consumer(
            **self.settings.client_kwargs(),
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            name = topic or outbox_topic(self.origin)
            tps = [TopicPartition(name, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            found = []
            for tp in tps:
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=2000)
                    found += [
                        (r.partition, r.offset, decode_envelope(r.value)) for r in batch.get(tp, [])
                    ]
            return sorted(found, key=lambda f: (f[0], f[1]))
        finally:
            await consumer.stop()


async def settled(outbox: Outbox, count: int, topic: str | None = None) -> list[Any]:
    """The committed records once ``count`` are visible: the broker writes a transaction's
    markers just after answering its commit, and a partition's stable end waits for them."""
    found: list[Any] = []

    async def visible() -> bool:
        found[:] = await outbox.committed(topic)
        return len(found) >= count

    await eventually(visible, within=30, what=f"{count} committed records")
    return found


@pytest.fixture
async def outbox(side: Side) -> Outbox:
    origin = random_ids(1)[0]
    for topic in (outbox_topic(origin), outbox_state_topic(origin)):
        await side.create_topic(topic, PARTITIONS)
    return Outbox(origin, side.settings, side.clients)


def _alerts(origin: str, count: int) -> Iterator[Any]:
    kinds = (AlertType.WANTED_PERSON, AlertType.VEHICLE_NOTICE, AlertType.BORDER_INCIDENT)
    for index in range(count):
        yield sample_alert(kinds[index % len(kinds)], origin=origin)


async def test_a_batch_commits_each_alert_on_its_keys_partition_once(outbox: Outbox) -> None:
    async with outbox.gateway() as gateway:
        receipts = await gateway.publish_batch(list(_alerts(outbox.origin, 6)))

    committed = await settled(outbox, len(receipts))
    assert sorted((r.partition, r.offset) for r in receipts) == [(p, o) for p, o, _ in committed]
    for receipt in receipts:
        assert receipt.partition == expected_partition(receipt.alert_id.encode(), PARTITIONS)
        assert (receipt.version, receipt.operation) == (1, Operation.CREATE)
    assert {e.header.message_id for _, _, e in committed} == {r.message_id for r in receipts}
    state = await settled(outbox, len(receipts), outbox_state_topic(outbox.origin))
    assert {e.header.alert_id for _, _, e in state} == {r.alert_id for r in receipts}


async def test_versions_continue_from_the_outbox_after_a_restart(outbox: Outbox) -> None:
    (alert,) = _alerts(outbox.origin, 1)
    async with outbox.gateway() as gateway:
        created = await gateway.publish(alert)
    async with outbox.gateway() as restarted:
        updated = await restarted.publish(alert.model_copy(update={"alert_id": created.alert_id}))
        cancelled = await restarted.cancel(created.alert_id, "arrested")

    assert [(r.version, r.operation) for r in (created, updated, cancelled)] == [
        (1, Operation.CREATE),
        (2, Operation.UPDATE),
        (3, Operation.CANCEL),
    ]
    assert created.partition == updated.partition == cancelled.partition  # one key, in order
    assert created.offset < updated.offset < cancelled.offset
    versions = [e.header.version for _, _, e in await settled(outbox, 3)]
    assert versions == [1, 2, 3]


async def test_an_invalid_batch_publishes_nothing(outbox: Outbox) -> None:
    good, other = _alerts(outbox.origin, 2)
    foreign = other.model_copy(update={"origin": "ZZZ"})
    async with outbox.gateway() as gateway:
        with pytest.raises(ValidationError, match="origin"):
            await gateway.publish_batch([good, foreign])
        with pytest.raises(ValidationError, match="never published"):
            await gateway.cancel("0" * 32, "no such alert")
    assert await outbox.committed() == []


async def test_what_an_aborted_transaction_wrote_is_never_read_committed(
    side: Side, outbox: Outbox
) -> None:
    (first, second) = _alerts(outbox.origin, 2)
    async with outbox.gateway() as gateway:
        kept = await gateway.publish(first)
    async with side.transaction(f"contract-{outbox.origin}", commit=False) as producer:
        sent = await producer.send(outbox_topic(outbox.origin), b"aborted", key=b"x")
        await sent
    async with outbox.gateway() as gateway:
        after = await gateway.publish(second)

    # The aborted record is never among them, and the next transaction commits as usual.
    # (The broker writes an abort's markers after answering it: until then a partition's
    # stable end stays at the aborted record, so what follows it shows a moment later.)
    expected = {kept.message_id, after.message_id}

    async def both_read() -> bool:
        committed = await outbox.committed()
        assert all(e.header.message_id in expected for _, _, e in committed)
        return len(committed) == 2

    await eventually(both_read, within=30, what="both committed messages, and nothing else")
