"""A commit whose answer is lost: the gateway asks the outbox whether it took effect
before sending the records again, so they are published exactly once either way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiokafka.errors import KafkaConnectionError

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.naming import outbox_topic
from border_exchange.domain.samples import sample_alert
from border_exchange.services.gateway import Gateway
from tests.conftest import KafkaCluster
from tests.kafka.test_gateway import KEY, outbox, participant, trust_for

pytestmark = pytest.mark.kafka


def losing_the_answer(
    commit: Callable[[], Awaitable[None]], reaches: bool
) -> Callable[[], Awaitable[None]]:
    """``commit`` whose answer never comes back; the request reaches the broker or not."""

    async def lost() -> None:
        if reaches:
            await commit()
        raise KafkaConnectionError("connection lost before the commit's answer")

    return lost


@pytest.mark.parametrize(
    "reaches", [True, False], ids=["commit-took-effect", "commit-never-arrived"]
)
async def test_a_lost_commit_answer_publishes_once(kafka: KafkaCluster, reaches: bool) -> None:
    origin = participant()
    await kafka.create_topic(name=outbox_topic(origin))
    gateway = Gateway(kafka.admin, origin, KEY, f"{origin}-1", trust_for(origin), retry_for=60)
    async with gateway:
        producer = gateway._producer
        assert producer is not None
        producer.commit_transaction = losing_the_answer(producer.commit_transaction, reaches)
        receipt = await gateway.publish(sample_alert(AlertType.VEHICLE_NOTICE, origin=origin))
    messages = await outbox(kafka, origin)
    for _ in range(60):  # commit markers follow the commit's answer by a moment
        if messages:
            break
        await asyncio.sleep(0.5)
        messages = await outbox(kafka, origin)
    assert [m.header.message_id for m in messages] == [receipt.message_id]
    written = await outbox(kafka, origin, "read_uncommitted")
    # taken as committed, the records were not sent again; else sent again once
    assert len(written) == (1 if reaches else 2)
