"""The hit procedure's own Kafka code (``services.hits``) against the in-memory fake: the
real ``send_queued`` and ``read_topic``, not a stand-in, fast and without a broker."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.naming import outbox_topic
from border_exchange.services import hits
from tests.fake_kafka import FakeKafka
from tests.unit.test_hits import report

SETTINGS = KafkaSettings("fake:9092")


async def test_queued_reports_stay_queued_while_the_outbox_is_unreachable_then_go_once(
    tmp_path: Path,
) -> None:
    cluster = FakeKafka()
    send = functools.partial(hits.send_queued, wait=1.0, clients=cluster.clients)
    with HitQueue(tmp_path / "post.db") as queue:
        for hit_id in ("hit-1", "hit-2"):
            queue.queue(replace(report(), hit_id=hit_id), hit_id.encode())

        refused = await send(SETTINGS, queue, "CAF")  # no outbox yet: every send fails
        assert (refused.sent, refused.left) == (0, 2)
        assert refused.error  # what went wrong, for the log
        assert {hit.state for hit in queue.reports()} == {SendState.QUEUED}

        cluster.create_topic(outbox_topic("CAF"), 3)
        sent = await send(SETTINGS, queue, "CAF")
        assert (sent.sent, sent.left, sent.error) == (2, 0, None)
        assert {hit.state for hit in queue.reports()} == {SendState.SENT}
        again = await send(SETTINGS, queue, "CAF")  # nothing left to send
        assert (again.sent, again.left) == (0, 0)

    values = await hits.read_topic(SETTINGS, outbox_topic("CAF"), cluster.clients)
    assert sorted(values) == [b"hit-1", b"hit-2"]
