"""Fault tests of the hit procedure: reports delivered exactly once through router kill -9,
and a report queued while the broker is down sent once when it comes back."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.demo.sandbox import open_agreements
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record
from border_exchange.domain.envelope import Header
from border_exchange.domain.hits import HitAction, decode_report, report_on, seal_report
from border_exchange.domain.trust import post_owner
from border_exchange.services import hits
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, make_exchange, running
from tests.kafka.test_gateway_post_faults import OwnCluster
from tests.router_process import kill_9, router_config, start_router, stop_router
from tests.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

POST = "east"


def _reports(ex: Exchange, alert_header: Header, count: int) -> list[tuple[str, bytes]]:
    _, b = ex.ids
    owner = post_owner(b, POST)
    now = datetime.now(UTC)
    out = []
    for _ in range(count):
        report = report_on(
            alert_header,
            reporter=b,
            post=POST,
            key_id=ex.sandbox.key_ids[owner],
            hit_at=now - timedelta(minutes=1),
            action=HitAction.OBSERVED,
            place="Zongo ferry",
            contact="radio 7",
            now=now,
        )
        out.append((report.hit_id, seal_report(report, ex.sandbox.keys[owner])))
    return out


async def test_reports_are_delivered_exactly_once_through_router_kill_9(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]), posts=(POST,))
    a, b = ex.ids
    alert = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    async with running(ex.router()):
        await ex.publish(alert)
        await ex.feed(b, a, expect=1)
    reports = _reports(ex, alert.header, 600)
    config = router_config(ex, tmp_path)
    log = tmp_path / "router.log"
    rng = random.Random(20261201)

    async def publish_steadily() -> None:
        producer = AIOKafkaProducer(**ex.settings.client_kwargs(), acks="all")
        await producer.start()
        try:
            for index, (_, value) in enumerate(reports):
                await producer.send(
                    naming.outbox_topic(b), value, key=alert.header.alert_id.encode()
                )
                if index % 20 == 19:
                    await asyncio.sleep(0.2)
            await producer.flush()
        finally:
            await producer.stop()

    publishing = asyncio.create_task(publish_steadily())
    router = start_router(config, log)
    try:
        for _ in range(2):
            await asyncio.sleep(rng.uniform(1.5, 3.5))
            assert router.poll() is None, log.read_text()[-3000:]
            kill_9(router)
            router = start_router(config, log)
        await publishing
        delivered = await ex.read(naming.hits_topic(a), expect=len(reports), wait=180)
    finally:
        publishing.cancel()
        stop_router(router)
    assert len(delivered) >= len(reports), log.read_text()[-3000:]
    got = Counter(decode_report(value).hit_id for value in delivered)
    assert set(got) == {hit_id for hit_id, _ in reports}
    assert max(got.values()) == 1, "a report was delivered twice"
    audited = Counter(
        record["message_id"]
        for _, record in map(decode_record, await ex.read(naming.audit_topic(b)))
        if record["kind"] == "HIT_REPORT"
    )
    assert audited == got  # every delivery audited, once
    quarantined = [
        record
        for _, record in map(decode_record, await ex.read(naming.QUARANTINE_TOPIC))
        if record["source_topic"] == naming.outbox_topic(b)
    ]
    assert quarantined == []


@pytest.fixture(scope="module")
def own() -> Iterator[OwnCluster]:
    cluster = OwnCluster(kafka_launcher.start_cluster(1))
    try:
        yield cluster
    finally:
        kafka_launcher.stop_cluster(cluster.info, remove=True)


async def test_a_report_queued_while_the_broker_is_down_is_sent_once_when_it_comes_back(
    own: OwnCluster, tmp_path: Path
) -> None:
    ex = await make_exchange(
        KafkaCluster(own.admin, own.info), 2, open_agreements([("P0", "P1")]), posts=(POST,)
    )
    a, b = ex.ids
    alert = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    async with running(ex.router()):
        await ex.publish(alert)
        await ex.feed(b, a, expect=1)
    ((hit_id, value),) = _reports(ex, alert.header, 1)
    with HitQueue(tmp_path / "post.db") as queue:
        queue.queue(decode_report(value), value)
        node = own.info.nodes[0]
        kafka_launcher.kill_node(node)
        down = await hits.send_queued(own.admin, queue, b, wait=5.0)
        assert (down.sent, down.left) == (0, 1)
        assert down.error is not None
        assert [h.state for h in queue.reports()] == [SendState.QUEUED]
        # 'post run' sends the queue by itself: its sender loop, started with the broker
        # still down, sends the report once the broker is back.
        tried: list[hits.SendResult] = []

        async def send(settings: KafkaSettings, q: HitQueue, sender: str) -> hits.SendResult:
            tried.append(await hits.send_queued(settings, q, sender, wait=5.0))
            return tried[-1]

        stop = asyncio.Event()
        loop = asyncio.create_task(
            hits.keep_sending(own.admin, queue, b, stop, every=2.0, send=send)
        )
        try:
            await eventually(lambda: bool(tried), within=60, what="a try with the broker down")
            assert (tried[0].sent, tried[0].left) == (0, 1)
            own.info = kafka_launcher.restart_node(own.info, node)

            async def sent() -> bool:
                return [h.state for h in queue.reports()] == [SendState.SENT]

            await eventually(sent, within=120, every=1, what="the queued report sent")
        finally:
            stop.set()
            await loop
        assert await hits.send_queued(own.admin, queue, b) == hits.SendResult(0, 0)
    outbox = [v for v in await ex.read(naming.outbox_topic(b)) if v == value]
    assert outbox == [value]  # written once
    async with running(ex.router()):
        delivered = await ex.read(naming.hits_topic(a), expect=1)
    assert [decode_report(v).hit_id for v in delivered] == [hit_id]
