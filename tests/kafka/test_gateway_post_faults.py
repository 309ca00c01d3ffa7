"""Fault tests on a cluster of their own: a broker restart during a gateway batch, and a post
that keeps answering while the broker is down and catches up when it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_launcher import ClusterInfo
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.post_store import PostStore
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.naming import feed_topic, outbox_topic
from border_exchange.domain.samples import sample_alert
from border_exchange.services.gateway import Gateway
from border_exchange.services.post import BorderPost, PostConfig
from tests.kafka.test_gateway import KEY, outbox, trust_for
from tests.kafka.test_post import sealed, trust
from tests.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@dataclass
class OwnCluster:
    """A one-node launcher cluster these tests may stop; ``info`` follows restarts."""

    info: ClusterInfo

    @property
    def admin(self) -> KafkaSettings:
        return KafkaSettings(
            self.info.client_bootstrap,
            "SASL_PLAINTEXT",
            self.info.admin_user,
            self.info.admin_password,
        )

    def kill_and_restart(self) -> None:
        """Kill the broker as a crash would and start it again on its ports and data."""
        node = self.info.nodes[0]
        kafka_launcher.kill_node(node)
        self.info = kafka_launcher.restart_node(self.info, node)

    async def create_topic(self, name: str) -> str:
        admin = AIOKafkaAdminClient(**self.admin.client_kwargs())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, 1, 1)])
        finally:
            await admin.close()
        return name


@pytest.fixture(scope="module")
def cluster() -> Iterator[OwnCluster]:
    own = OwnCluster(kafka_launcher.start_cluster(1))
    try:
        yield own
    finally:
        kafka_launcher.stop_cluster(own.info, remove=True)


async def test_a_broker_crash_in_the_middle_of_a_batch_loses_and_duplicates_nothing(
    cluster: OwnCluster,
) -> None:
    origin = "KEN"
    await cluster.create_topic(outbox_topic(origin))
    alerts = [sample_alert(AlertType.VEHICLE_NOTICE, origin=origin) for _ in range(300)]
    async with Gateway(
        cluster.admin,
        origin,
        KEY,
        f"{origin}-1",
        trust_for(origin),
        producer_options={"request_timeout_ms": 15000},
    ) as gateway:
        producer: Any = gateway._producer
        original = producer.send
        sent = 0

        async def send_then_crash(*args: Any, **kwargs: Any) -> Any:
            nonlocal sent
            sent += 1
            if sent == 150:
                await asyncio.to_thread(cluster.kill_and_restart)
            return await original(*args, **kwargs)

        producer.send = send_then_crash
        receipts = await gateway.publish_batch(alerts)
    assert sent >= 150

    ids = [envelope.header.message_id for envelope in await outbox(cluster, origin)]
    assert len(ids) == len(set(ids)) == 300
    assert ids == [r.message_id for r in receipts]


async def test_the_post_answers_while_the_broker_is_down_and_catches_up(
    cluster: OwnCluster, tmp_path: Path
) -> None:
    me = "COD"
    feed = await cluster.create_topic(feed_topic(me, "UGA"))

    async def write(*aliases: str) -> None:
        producer = AIOKafkaProducer(**cluster.admin.client_kwargs(), acks="all")
        await producer.start()
        try:
            for alias in aliases:
                envelope = sealed(sample_alert(AlertType.VEHICLE_NOTICE, origin="UGA"), alias)
                await producer.send_and_wait(feed, encode_envelope(envelope), key=alias.encode())
        finally:
            await producer.stop()

    await write("before")
    path = tmp_path / "post.db"
    store = PostStore.open(path)
    post = BorderPost(cluster.admin, PostConfig(me, "kasindi", max_backoff=4.0), store, trust())
    stop = asyncio.Event()
    task = asyncio.create_task(post.run(stop))
    try:
        await eventually(lambda: store.offsets().get((feed, 0), 0) >= 1)

        node = cluster.info.nodes[0]
        await asyncio.to_thread(kafka_launcher.stop_node, node)
        stopped_at = datetime.now(UTC)
        await asyncio.sleep(8)
        assert not task.done()
        with PostStore.open(path) as reader:  # a lookup from another process, link down
            assert [a.alert_id for a in reader.find_plate("BG 4512 A")] == ["before"]
            last_sync = reader.status().last_sync
            assert last_sync is not None
            assert last_sync <= stopped_at  # no sync is claimed while the broker is down

        cluster.info = await asyncio.to_thread(kafka_launcher.restart_node, cluster.info, node)
        await asyncio.to_thread(kafka_launcher.wait_ready, cluster.info, 90.0)
        await write("after-1", "after-2")
        await eventually(lambda: store.offsets().get((feed, 0), 0) >= 3, within=90.0)
        assert {a.alert_id for a in store.active()} == {"before", "after-1", "after-2"}
        assert post.applied.stored == 3
        caught_up = store.status()
        assert caught_up.last_sync is not None
        assert caught_up.last_sync > stopped_at
        assert caught_up.lag == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        store.close()
