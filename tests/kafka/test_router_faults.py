"""Exactly once through crashes and rebalances: every permitted copy once, and nothing else."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from border_exchange.adapters.kafka_launcher import die_with_parent
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.sandbox import open_agreements
from border_exchange.services.router import Router
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, make_exchange, running
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
    expected: dict[tuple[str, str], Counter[str]] = {}
    for envelope in envelopes:
        origin = envelope.header.origin
        for recipient in ex.ids:
            if recipient != origin:
                expected.setdefault((recipient, origin), Counter())[envelope.header.message_id] += 1
    for (recipient, origin), want in expected.items():
        got = Counter(e.header.message_id for e in await ex.feed(recipient, origin))
        assert got == want, (
            f"{recipient} from {origin}: {sum((got - want).values())} extra, "
            f"{sum((want - got).values())} missing"
        )
    quarantined = [
        record
        for _, record in map(decode_record, await ex.read(naming.QUARANTINE_TOPIC))
        if naming.parse_outbox_topic(record["source_topic"]) in ex.ids
    ]
    assert quarantined == []


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


def _router_config(ex: Exchange, directory: Path) -> Path:
    paths = ex.sandbox.write(directory, b"crash-test")
    config = {
        "kafka": {
            "bootstrap": ex.settings.bootstrap,
            "security_protocol": ex.settings.security_protocol,
            "username": ex.settings.username,
            "password": ex.settings.password,
        },
        "trust_store": str(paths["trust"]),
        "agreements": str(paths["agreements"]),
        "agreement_history": str(directory / "history"),
        "signing_key": str(paths["key:hub"]),
        "group_id": ex.group,
        "outbox_pattern": ex.tuning().outbox_pattern,
        "batch_size": 300,
        "checkpoint_every": 500,
        "metrics_port": 0,
    }
    path = directory / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start_router(config: Path, log: Path, level: str = "WARNING") -> subprocess.Popen[bytes]:
    env = {**os.environ, "BX_KEY_PASSPHRASE": "crash-test"}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "border_exchange", "router", "run", "--config", str(config),
             "--log-level", level],
            env=env, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        )  # fmt: skip


async def test_kill_9_at_random_points_neither_loses_nor_duplicates(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ex = await make_exchange(kafka, 3, open_agreements([("P0", "P1"), ("P0", "P2"), ("P1", "P2")]))
    envelopes = _messages(ex, 20_000)
    config = _router_config(ex, tmp_path)
    log = tmp_path / "router.log"
    rng = random.Random(20261129)

    publishing = asyncio.create_task(_publish_steadily(ex, envelopes, seconds=20))
    kills = 0
    router = _start_router(config, log)
    try:
        while kills < 4:
            await asyncio.sleep(rng.uniform(2.0, 7.0))
            assert router.poll() is None, log.read_text()[-3000:]
            router.send_signal(signal.SIGKILL)
            router.wait()
            kills += 1
            router = _start_router(config, log)
        await publishing
        await _wait_for_feeds(ex, envelopes, within=240)
    finally:
        publishing.cancel()
        router.send_signal(signal.SIGTERM)
        try:
            router.wait(60)
        except subprocess.TimeoutExpired:
            router.kill()
    assert router.returncode == 0, log.read_text()[-3000:]
    await _feeds_hold_exactly(ex, envelopes)


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
