"""Fault tests of the hit procedure: a report queued while the broker is down is sent once
when it comes back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.demo.sandbox import open_agreements
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.envelope import Header
from border_exchange.domain.hits import HitAction, decode_report, report_on, seal_report
from border_exchange.domain.trust import post_owner
from border_exchange.services import hits
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, make_exchange, running
from tests.kafka.test_gateway_post_faults import OwnCluster
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
        own.info = kafka_launcher.restart_node(own.info, node)

        async def sent() -> bool:
            return (await hits.send_queued(own.admin, queue, b, wait=10.0)).left == 0

        await eventually(sent, within=120, every=2, what="the queued report sent")
        assert [h.state for h in queue.reports()] == [SendState.SENT]
        assert await hits.send_queued(own.admin, queue, b) == hits.SendResult(0, 0)
    outbox = [v for v in await ex.read(naming.outbox_topic(b)) if v == value]
    assert outbox == [value]  # written once
    async with running(ex.router()):
        delivered = await ex.read(naming.hits_topic(a), expect=1)
    assert [decode_report(v).hit_id for v in delivered] == [hit_id]
