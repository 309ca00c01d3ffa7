"""Exactly once through crashes and rebalances: every permitted copy once, and nothing else."""

from __future__ import annotations

import asyncio
import glob
import json
import random
import signal
import subprocess
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_launcher import ClusterInfo
from border_exchange.demo.sandbox import open_agreements
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.services.router import Router
from tests import cli, clock
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, every_copy_once, make_exchange, running
from tests.router_process import kill_9, router_config, start_router, stop_router
from tests.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TYPES = (AlertType.WANTED_PERSON, AlertType.VEHICLE_NOTICE, AlertType.BORDER_INCIDENT)


def _messages(ex: Exchange, count: int) -> list[Envelope]:
    return [
        ex.seal(ex.alert(TYPES[i % 3], ex.ids[i % len(ex.ids)], language="en"))
        for i in range(count)
    ]


async def _publish_steadily(ex: Exchange, envelopes: Sequence[Envelope], seconds: float) -> None:
    producer = AIOKafkaProducer(**ex.settings.client_kwargs(), acks="all", linger_ms=5)
    await producer.start()
    try:
        chunk = 250
        pause = seconds / max(1, len(envelopes) // chunk)
        for start in range(0, len(envelopes), chunk):
            for envelope in envelopes[start : start + chunk]:
                header = envelope.header
                await producer.send(
                    naming.outbox_topic(header.origin),
                    encode_envelope(envelope),
                    key=header.alert_id.encode(),
                )
            await producer.flush()
            await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def _feeds_hold_exactly(ex: Exchange, envelopes: Sequence[Envelope]) -> None:
    await every_copy_once(ex, [(e.header.origin, e.header.message_id) for e in envelopes])


async def _wait_for_feeds(ex: Exchange, envelopes: Sequence[Envelope], within: float) -> None:
    """Wait until the routers' group has committed every outbox record of the exchange."""
    consumer = AIOKafkaConsumer(
        **ex.settings.client_kwargs(), group_id=ex.group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(naming.outbox_topic(p), i) for p in ex.ids for i in range(3)]
        ends = await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            committed = {tp: await consumer.committed(tp) or 0 for tp in tps}
            if all(committed[tp] >= ends[tp] for tp in tps):
                return
            assert loop.time() < deadline, f"not everything was routed: {committed} < {ends}"
            await asyncio.sleep(1)
    finally:
        await consumer.stop()


async def test_kill_9_at_random_points_neither_loses_nor_duplicates(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ex = await make_exchange(kafka, 3, open_agreements([("P0", "P1"), ("P0", "P2"), ("P1", "P2")]))
    envelopes = _messages(ex, 20_000)
    config = router_config(ex, tmp_path)
    log = tmp_path / "router.log"
    rng = random.Random(20261129)
    started = clock.now() - timedelta(minutes=1)

    publishing = asyncio.create_task(_publish_steadily(ex, envelopes, seconds=20))
    kills = 0
    caught: list[bool] = []
    router = start_router(config, log)
    written = [TopicPartition(t, p) for t in _written_topics(ex) for p in range(3)]
    try:
        while kills < 4:
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            # Three kills land inside a transaction that has written records and is not
            # committed yet (a restarted router first waits out its killed predecessor's
            # 30 s session in the group); the last lands wherever it falls.
            assert router.poll() is None, log.read_text()[-3000:]
            if kills < 3:
                caught.append(await _freeze_inside_a_transaction(ex, router, written, within=75))
            kill_9(router)
            kills += 1
            router = start_router(config, log)
        await publishing
        await _wait_for_feeds(ex, envelopes, within=240)
    finally:
        publishing.cancel()
        stop_router(router)
    assert router.returncode == 0, log.read_text()[-3000:]
    await _feeds_hold_exactly(ex, envelopes)
    # At least one kill landed inside an open transaction: the broker aborted it when the
    # next router took over its transactional id, and wrote ABORT markers into the logs
    # it had written to; its records (when sent before the kill) are there, aborted: a
    # read_uncommitted reader sees them, a read_committed one does not.
    assert any(caught), "no kill found an open transaction to interrupt"
    topics = _written_topics(ex)
    aborted = await _aborted_records(ex, topics)
    assert aborted > 0, "no kill left aborted records"
    if kafka.info is not None:  # the launcher's broker: its log files can be read
        assert _abort_markers(kafka.info, topics) > 0
    # And the audit chains replay clean after the crashes, by the auditor's command, under
    # the governed trust store the router ran under.
    replay = cli.run(
        "audit", "replay", "--from", clock.iso(started), "--to", clock.iso(clock.days(1)),
        "--trust", str(tmp_path / "trust.yaml"),
        "--config", str(cli.kafka_config(ex.settings, tmp_path / "auditor.yaml")),
        "--agreements-history", str(tmp_path / "history"),
        "--participant", ex.ids[0],  # and its two partners: this exchange only
        "--report", str(tmp_path / "report.json"), "--quiet",
    )  # fmt: skip
    assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-3000:]
    assert cli.summary(replay.stdout).endswith(": CLEAN"), replay.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["verdict"], report["violations"]) == ("CLEAN", [])
    assert report["counts"]["decisions"] == len(envelopes)  # each decided once, crashes or not
    # A deliberate tamper after the crashes: a validly signed copy that nobody routed,
    # written straight into a partner's feed. The replay names it, and nothing else.
    forged = ex.seal(ex.alert(AlertType.WANTED_PERSON, ex.ids[0]))
    await ex.publish(
        raw=[(naming.feed_topic(ex.ids[1], ex.ids[0]), forged.header.alert_id.encode(),
              encode_envelope(forged))]
    )  # fmt: skip
    tampered = cli.run(
        "audit", "replay", "--from", clock.iso(started), "--to", clock.iso(clock.days(1)),
        "--trust", str(tmp_path / "trust.yaml"),
        "--config", str(tmp_path / "auditor.yaml"),
        "--agreements-history", str(tmp_path / "history"),
        "--participant", ex.ids[0], "--report", str(tmp_path / "report.json"), "--quiet",
    )  # fmt: skip
    assert tampered.returncode == 1, tampered.stdout[-3000:] + tampered.stderr[-3000:]
    (violation,) = json.loads((tmp_path / "report.json").read_text())["violations"]
    assert violation["code"] == "FEED_UNAUTHORISED"
    assert violation["topic"] == naming.feed_topic(ex.ids[1], ex.ids[0])


def _written_topics(ex: Exchange) -> list[str]:
    """The topics the router writes in its transactions: audit trails and feeds."""
    topics = [naming.audit_topic(p) for p in ex.ids]
    return topics + [naming.feed_topic(r, o) for o in ex.ids for r in ex.ids if r != o]


async def _freeze_inside_a_transaction(
    ex: Exchange,
    router: subprocess.Popen[bytes],
    partitions: Sequence[TopicPartition],
    within: float,
) -> bool:
    """Stop ``router`` (SIGSTOP) while one of its transactions is open, so that the kill
    that follows is sure to land inside it (False after ``within`` seconds).

    A transaction seen open from outside may commit before a signal arrives, so the
    router is frozen first and the log looked at again: a frozen router sends no commit,
    and one already sent has written its markers within the pause. Open then, it stays
    open until the next router's producer fences it and the broker aborts it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if not await _until_a_transaction_is_open(ex, partitions, deadline - loop.time()):
            return False
        router.send_signal(signal.SIGSTOP)
        await asyncio.sleep(0.5)
        if await _until_a_transaction_is_open(ex, partitions, 0):
            return True
        router.send_signal(signal.SIGCONT)
    return False


async def _until_a_transaction_is_open(
    ex: Exchange, partitions: Sequence[TopicPartition], within: float
) -> bool:
    """Return once a partition's high watermark is past its last stable offset: records of
    a transaction not committed yet are in the log (False after ``within`` seconds)."""
    readers = [
        AIOKafkaConsumer(**ex.settings.client_kwargs(), isolation_level=isolation)
        for isolation in ("read_uncommitted", "read_committed")
    ]
    for reader in readers:
        await reader.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            high = await readers[0].end_offsets(list(partitions))
            stable = await readers[1].end_offsets(list(partitions))
            if any(high[tp] > stable[tp] for tp in partitions):
                return True
            if loop.time() >= deadline:
                return False
    finally:
        for reader in readers:
            await reader.stop()


def _abort_markers(info: ClusterInfo, topics: Sequence[str]) -> int:
    """ABORT markers in the log segments of ``topics``, as Kafka's DumpLogSegments prints them."""
    files = [
        str(segment)
        for node in info.nodes
        for topic in topics
        for segment in sorted(Path(node.data_dir, "data").glob(f"{glob.escape(topic)}-*/*.log"))
    ]
    assert files, "no log segment of the exchange's topics"
    command = [kafka_launcher.java_executable(), "-cp", f"{kafka_launcher.resolve_jars()}/*"]
    command += ["org.apache.kafka.tools.DumpLogSegments", "--print-data-log"]
    dumped = subprocess.run(
        [*command, "--files", ",".join(files)], capture_output=True, check=True, timeout=300
    ).stdout
    return dumped.count(b"endTxnMarker: ABORT")


async def _aborted_records(ex: Exchange, topics: Sequence[str]) -> int:
    """Records of ``topics`` that belong to aborted transactions (all seen minus committed)."""

    async def count(isolation: str) -> int:
        consumer = AIOKafkaConsumer(
            **ex.settings.client_kwargs(), isolation_level=isolation, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in range(3)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            seen = 0
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(*tps, timeout_ms=1000)
                seen += sum(len(records) for records in batch.values())
            return seen
        finally:
            await consumer.stop()

    return await count("read_uncommitted") - await count("read_committed")


async def test_two_routers_share_the_work_across_a_stop_and_a_start(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 3, open_agreements([("P0", "P1"), ("P0", "P2"), ("P1", "P2")]))
    envelopes = _messages(ex, 6_000)
    publishing = asyncio.create_task(_publish_steadily(ex, envelopes, seconds=12))

    def routed_by(router: Router) -> float:
        return sum(router.metrics.value("routed_total", {"origin": p}) for p in ex.ids)

    async with running(ex.router(batch_size=200)) as first:
        async with running(ex.router(batch_size=200)) as second:
            await eventually(lambda: bool(second.workers), what="the second router has partitions")
            routed = routed_by(second)
            await eventually(
                lambda: routed_by(second) > routed, what="the second router routes records"
            )
        # The second router stopped cleanly mid-stream; the first takes every partition back.
        await eventually(
            lambda: len(first.workers) == len(ex.ids) * 3,
            within=60,
            what="the first router owns every outbox partition again",
        )
        async with running(ex.router(batch_size=200)):
            await publishing
            await _wait_for_feeds(ex, envelopes, within=180)
    await _feeds_hold_exactly(ex, envelopes)
