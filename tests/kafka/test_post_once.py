"""``post run --once`` through the installed command: catch up and exit, the exit code
telling success (0), a gap healed from the state (3), a gap with no state to heal it (4)
and an error (1) apart."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from border_exchange.adapters.kafka_launcher import free_port
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.cli.post import EXIT_CAUGHT_UP, EXIT_GAP_HEALED, EXIT_GAP_NOT_HEALED
from border_exchange.demo.sandbox import make_sandbox, open_agreements
from border_exchange.domain import naming
from border_exchange.domain.alerts import AlertInput
from border_exchange.domain.catalog import AlertType
from tests import cli
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, create_topics, random_ids, running

pytestmark = [pytest.mark.kafka]


def _vehicle(ex: Exchange, origin: str, plate: str) -> AlertInput:
    alert = ex.alert(AlertType.VEHICLE_NOTICE, origin)
    data = alert.model_dump()
    data["sections"]["vehicle"]["plate"] = plate
    return type(alert).model_validate(data)


def _cancel(ex: Exchange, alert: AlertInput) -> AlertInput:
    return ex.alert(
        AlertType.VEHICLE_NOTICE,
        alert.origin,
        alert_id=alert.alert_id,
        version=2,
        operation="CANCEL",
        cancel_reason="vehicle recovered",
        sections={},
    )


async def _forget(settings: KafkaSettings, topic: str) -> None:
    """Delete every record of ``topic``, as retention would while a post is away."""
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            tps = [TopicPartition(topic, p) for p in range(3)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(ends[tp]) for tp in tps if ends[tp]})
    finally:
        await admin.close()


async def _delete_topic(settings: KafkaSettings, topic: str) -> None:
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def _write_raw(settings: KafkaSettings, topic: str, count: int) -> None:
    """Records a post will never read (deleted before it comes back)."""
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all")
    await producer.start()
    try:
        for partition in range(3):
            for _ in range(count):
                await producer.send_and_wait(topic, b"never read", partition=partition)
    finally:
        await producer.stop()


async def test_post_run_once_catches_up_and_its_exit_code_tells_a_gap_apart(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ids = random_ids(2)
    origin, service = ids
    box = make_sandbox(ids, open_agreements([(origin, service)]))
    await create_topics(kafka.admin, ids)
    ex = Exchange(kafka, box, ids)
    files = box.write(tmp_path / "files", b"once-tests")
    config = cli.kafka_config(kafka.admin, tmp_path / "post.yaml")
    db = tmp_path / "post.db"
    feed = naming.feed_topic(service, origin)

    def once(config: Path = config, *extra: str) -> subprocess.CompletedProcess[str]:
        return cli.run(
            "post", "run", "--once", "--participant", service, "--post", "east",
            "--db", str(db), "--trust", str(files["trust"]), "--config", str(config), *extra,
        )  # fmt: skip

    def holds(plate: str) -> bool:
        return cli.run("post", "check", "--db", str(db), "--plate", plate).returncode == 0

    first, second = _vehicle(ex, origin, "ONCE 1 A"), _vehicle(ex, origin, "ONCE 2 A")
    async with running(ex.router()):
        await ex.publish(ex.seal(first), ex.seal(second))
        assert len(await ex.feed(service, origin, expect=2)) == 2

    # -- a new post starts from the state: caught up, no gap
    done = await asyncio.to_thread(once)
    assert done.returncode == EXIT_CAUGHT_UP, done.stdout + done.stderr
    assert "caught up: 2 stored" in done.stdout
    assert holds("ONCE 1 A")
    assert holds("ONCE 2 A")

    # -- away while the origin cancels one alert and publishes another; the feed forgets
    third = _vehicle(ex, origin, "ONCE 3 A")
    async with running(ex.router()):
        await ex.publish(ex.seal(_cancel(ex, first)), ex.seal(third))
        assert len(await ex.feed(service, origin, expect=4)) == 4
    await _forget(kafka.admin, feed)
    done = await asyncio.to_thread(once)
    assert done.returncode == EXIT_GAP_HEALED, done.stdout + done.stderr
    assert "bootstrapped from " + naming.feed_state_topic(service, origin) in done.stdout
    assert not holds("ONCE 1 A")  # cancelled while the post was away
    assert holds("ONCE 2 A")
    assert holds("ONCE 3 A")
    status = cli.run("post", "status", "--db", str(db), "--lang", "en")
    assert naming.feed_state_topic(service, origin) in status.stdout, status.stdout

    # -- nothing new: caught up again, the old gap is not reported twice
    again = await asyncio.to_thread(once)
    assert again.returncode == EXIT_CAUGHT_UP, again.stdout + again.stderr
    assert "caught up: 0 stored" in again.stdout

    # -- a new alert on the feed: read from the feed itself, to its end
    async with running(ex.router()):
        await ex.publish(ex.seal(_vehicle(ex, origin, "ONCE 4 A")))
        assert len(await ex.feed(service, origin, expect=1)) == 1
    followed = await asyncio.to_thread(once)
    assert followed.returncode == EXIT_CAUGHT_UP, followed.stdout + followed.stderr
    assert "caught up: 1 stored" in followed.stdout
    assert holds("ONCE 4 A")

    # -- a gap with no state topic to heal it from: alerts may be missing
    await _delete_topic(kafka.admin, naming.feed_state_topic(service, origin))
    await _write_raw(kafka.admin, feed, 2)
    await _forget(kafka.admin, feed)
    unhealed = await asyncio.to_thread(once)
    assert unhealed.returncode == EXIT_GAP_NOT_HEALED, unhealed.stdout + unhealed.stderr
    assert "NOT healed" in unhealed.stdout
    assert holds("ONCE 2 A")  # what the post held stays

    # -- no broker: an error, once the timeout has passed
    nowhere = KafkaSettings(f"127.0.0.1:{free_port()}", "PLAINTEXT")
    lost = await asyncio.to_thread(
        once, cli.kafka_config(nowhere, tmp_path / "nowhere.yaml"), "--timeout", "3"
    )
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert "did not catch up within 3 s" in lost.stderr
