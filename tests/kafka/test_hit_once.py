"""``post run --once`` sends the post's queued hit reports and brings back the answers: a
report queued with ``post report-hit --queue-only`` goes with the next ``--once``, once;
the origin's acknowledgement comes back with a later one and ``post hits`` shows it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.cli.post import EXIT_CAUGHT_UP
from border_exchange.demo.sandbox import open_agreements
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.hits import MessageKind, decode_ack, decode_report, message_kind
from border_exchange.services import hits
from tests import cli
from tests.conftest import KafkaCluster
from tests.exchange import make_exchange, running

pytestmark = pytest.mark.kafka

POST = "east"
PASSPHRASE = "hit-once-tests"


async def test_post_run_once_sends_the_queue_and_fetches_the_acknowledgement(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]), posts=(POST,))
    origin, service = ex.ids
    files = ex.sandbox.write(tmp_path / "files", PASSPHRASE.encode())
    config = cli.kafka_config(ex.settings, tmp_path / "post.yaml")
    db = tmp_path / "post.db"
    post = ("--participant", service, "--post", POST, "--db", str(db),
            "--trust", str(files["trust"]), "--config", str(config))  # fmt: skip

    def once() -> str:
        done = cli.run("post", "run", "--once", *post)
        assert done.returncode == EXIT_CAUGHT_UP, done.stdout + done.stderr
        return done.stdout

    alert = ex.seal(ex.alert(AlertType.WANTED_PERSON, origin))
    async with running(ex.router()):
        await ex.publish(alert)
        await ex.feed(service, origin, expect=1)
    # One run holds the alert: a feed the metadata does not show yet is waited for
    # (tests/unit/test_exchange_on_fake.py), never called caught up.
    assert "caught up: 1 stored" in await asyncio.to_thread(once)
    queued = cli.run(
        "post", "report-hit", *post, "--key", str(files[f"key:{service}.post.{POST}"]),
        "--alert", alert.header.alert_id, "--action", "observed", "--place", "Zongo ferry",
        "--contact", "radio 7", "--queue-only",
        env={"BX_KEY_PASSPHRASE": PASSPHRASE},
    )  # fmt: skip
    assert queued.returncode == 0, queued.stdout + queued.stderr
    with HitQueue(db) as queue:
        ((hit_id, _, value),) = queue.queued()

    sent = await asyncio.to_thread(once)
    assert "sent 1 hit report(s)" in sent, sent
    with HitQueue(db) as queue:
        assert [h.state for h in queue.reports()] == [SendState.SENT]
    assert "hit report" not in await asyncio.to_thread(once)  # nothing left: nothing sent
    outbox = [v for v in await ex.read(naming.outbox_topic(service)) if v == value]
    assert outbox == [value]  # written once

    async with running(ex.router()):
        (delivered,) = await ex.read(naming.hits_topic(origin), expect=1)
        report = decode_report(delivered)
        assert report.hit_id == hit_id
        await hits.acknowledge(
            ex.settings, report, key=ex.sandbox.keys[origin],
            key_id=ex.sandbox.key_ids[origin], instructions="Note it; no action",
            now=datetime.now(UTC),
        )  # fmt: skip
        answers = await ex.read(naming.hits_topic(service), expect=1)
    assert [decode_ack(v).hit_id for v in answers if message_kind(v) is MessageKind.HIT_ACK] == [
        hit_id
    ]
    fetched = await asyncio.to_thread(once)
    assert "1 acknowledgement(s) of this post's hit reports received" in fetched, fetched
    shown = cli.run("post", "hits", *post, "--offline")
    assert f"acknowledged by {origin}" in shown.stdout, shown.stdout
    assert "Note it; no action" in shown.stdout
