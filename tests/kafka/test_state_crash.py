"""State and tombstones through router crashes: kill -9 while the router routes creates,
updates and cancels and erases them after a grace of seconds. Then every feed state holds
exactly one record per version routed and the right latest record per alert (a tombstone
for each cancelled one), every outbox state a tombstone for each cancelled alert, a post
that ran throughout and a post started afterwards from the state hold the same alerts in
force, and the audit of the period replays CLEAN (``audit replay``, under the governed
trust store the router ran under)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from border_exchange.adapters.post_store import PostStore
from border_exchange.demo.sandbox import open_agreements
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.services.post import BorderPost, PostConfig
from tests import cli, clock
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, every_copy_once, make_exchange, running
from tests.kafka.test_router_faults import (
    _freeze_inside_a_transaction,
    _publish_steadily,
    _wait_for_feeds,
    _written_topics,
)
from tests.router_process import kill_9, router_config, start_router, stop_router
from tests.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ALERTS = 900
GRACE = "3s"


@dataclass(frozen=True)
class Plan:
    """The messages to publish, oldest first, and each alert's final version and fate."""

    messages: list[Envelope]
    final: dict[str, int]
    cancelled: set[str]
    origin: dict[str, str]


def _plan(ex: Exchange) -> Plan:
    """Creates for every alert; then an update for some, a cancel for others, both for some."""
    creates, later = [], []
    final: dict[str, int] = {}
    cancelled: set[str] = set()
    origin: dict[str, str] = {}
    types = (AlertType.WANTED_PERSON, AlertType.VEHICLE_NOTICE, AlertType.BORDER_INCIDENT)
    for i in range(ALERTS):
        alert_type, source = types[i % 3], ex.ids[i % len(ex.ids)]
        create = ex.alert(alert_type, source, language="en")
        alert_id = create.alert_id
        assert alert_id is not None
        creates.append(ex.seal(create))
        version, origin[alert_id] = 1, source
        if i % 4 in (1, 3):
            version += 1
            update = ex.alert(
                alert_type, source, alert_id=alert_id, version=version, operation="UPDATE"
            )
            later.append(ex.seal(update))
        if i % 4 in (2, 3):
            version += 1
            cancel = ex.alert(
                alert_type, source, alert_id=alert_id, version=version, operation="CANCEL",
                cancel_reason="withdrawn", sections={},
            )  # fmt: skip
            later.append(ex.seal(cancel))
            cancelled.add(alert_id)
        final[alert_id] = version
    return Plan(creates + later, final, cancelled, origin)


@dataclass
class StateRead:
    """What one state topic holds: committed records per alert, oldest first."""

    records: dict[str, list[int | None]]
    """Per alert id, the version of each record (None: a tombstone)."""


async def _read_state(ex: Exchange, topic: str) -> StateRead:
    consumer = AIOKafkaConsumer(
        **ex.settings.client_kwargs(), group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: dict[str, list[int | None]] = {}
        while behind := [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*behind, timeout_ms=1000)
            for got in batch.values():
                for record in got:
                    version = None
                    if record.value is not None:
                        version = decode_envelope(record.value).header.version
                    records.setdefault(record.key.decode(), []).append(version)
        return StateRead(records)
    finally:
        await consumer.stop()


def _problems(state: StateRead, plan: Plan, alerts: Sequence[str]) -> list[str]:
    """How ``state`` differs from exactly-once state of ``alerts`` (empty: it does not)."""
    problems = []
    for alert_id in alerts:
        versions = state.records.get(alert_id, [])
        copies = Counter(v for v in versions if v is not None)
        twice = sorted(v for v, n in copies.items() if n > 1)
        if twice:
            problems.append(f"{alert_id}: versions {twice} written more than once")
        if sorted(copies) != list(range(1, plan.final[alert_id] + 1)):
            problems.append(f"{alert_id}: versions {sorted(copies)} of {plan.final[alert_id]}")
        latest = versions[-1] if versions else "nothing"
        expected = None if alert_id in plan.cancelled else plan.final[alert_id]
        if latest != expected:
            problems.append(f"{alert_id}: latest record {latest}, expected {expected}")
    unknown = set(state.records) - set(alerts)
    if unknown:
        problems.append(f"records of alerts not routed there: {sorted(unknown)[:3]}")
    return problems


async def _state_problems(ex: Exchange, plan: Plan) -> list[str]:
    """What is wrong in the feed states and in the router's tombstones in outbox states."""
    problems = []
    for source in ex.ids:
        mine = [a for a, o in plan.origin.items() if o == source]
        for recipient in (r for r in ex.ids if r != source):
            topic = naming.feed_state_topic(recipient, source)
            found = _problems(await _read_state(ex, topic), plan, mine)
            problems += [f"{topic}: {p}" for p in found]
        # The outbox state's values are the gateway's (this test writes the outboxes
        # itself); the router's part is a tombstone for every cancelled alert.
        topic = naming.outbox_state_topic(source)
        outbox = await _read_state(ex, topic)
        tombstoned = {a for a, versions in outbox.records.items() if versions[-1] is None}
        if tombstoned != plan.cancelled & set(mine):
            problems.append(f"{topic}: tombstones for {len(tombstoned)} alerts, expected for "
                            f"{len(plan.cancelled & set(mine))}")  # fmt: skip
        if any(v is not None for versions in outbox.records.values() for v in versions):
            problems.append(f"{topic}: values the router should not have written")
    return problems


@asynccontextmanager
async def _following(ex: Exchange, participant: str, path: Path) -> AsyncIterator[PostStore]:
    store = PostStore.open(path)
    post = BorderPost(ex.settings, PostConfig(participant, "east"), store, ex.sandbox.trust)
    try:
        async with running(post):
            yield store
    finally:
        store.close()


def _in_force(plan: Plan, participant: str) -> set[str]:
    return {a for a, o in plan.origin.items() if o != participant and a not in plan.cancelled}


async def test_state_and_tombstones_stay_exact_through_router_kill_9(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ex = await make_exchange(kafka, 3, open_agreements([("P0", "P1"), ("P0", "P2"), ("P1", "P2")]))
    plan = _plan(ex)
    config = router_config(ex, tmp_path)
    retention = tmp_path / "retention.yaml"
    retention.write_text(yaml.safe_dump({"retention": {"grace": GRACE, "state_segment": "2s"}}))
    settings = yaml.safe_load(config.read_text()) | {"retention": str(retention)}
    config.write_text(yaml.safe_dump(settings))
    log = tmp_path / "router.log"
    rng = random.Random(16)
    began = datetime.now(UTC)
    written = [TopicPartition(t, p) for t in _written_topics(ex) for p in range(3)]
    follower, later = ex.ids[1], ex.ids[2]

    async with _following(ex, follower, tmp_path / "follower.db") as following:
        publishing = asyncio.create_task(_publish_steadily(ex, plan.messages, seconds=15))
        router = start_router(config, log)
        caught = []
        try:
            for kill in range(3):
                await asyncio.sleep(rng.uniform(1.0, 4.0))
                assert router.poll() is None, log.read_text()[-3000:]
                if kill != 1:
                    caught.append(
                        await _freeze_inside_a_transaction(ex, router, written, within=75)
                    )
                kill_9(router)
                router = start_router(config, log)
            await publishing
            await _wait_for_feeds(ex, plan.messages, within=240)
            # Cancels erase after the grace: the router tombstones them, also those
            # whose cancel a killed router had routed.
            problems = await _settled_state(ex, plan, within=90)
            assert problems == [], problems[:20]
            await eventually(
                lambda: _active(following) == _in_force(plan, follower),
                within=90,
                what="the post that ran throughout converged",
            )
        finally:
            publishing.cancel()
            stop_router(router)
    assert router.returncode == 0, log.read_text()[-3000:]
    assert any(caught), "no kill found an open transaction to interrupt"
    assert await _state_problems(ex, plan) == []
    await every_copy_once(ex, [(e.header.origin, e.header.message_id) for e in plan.messages])

    # -- a post set up now starts from the state alone (the feeds are complete too, but
    # it resumes them at their end): the same alerts in force
    with PostStore.open(tmp_path / "later.db") as store:
        post = BorderPost(ex.settings, PostConfig(later, "west"), store, ex.sandbox.trust)
        done = await post.catch_up(120)
        assert done.gaps == ()
        assert _active(store) == _in_force(plan, later)
        assert done.applied.rejected == 0

    # -- the audit of the period, crashes included, by the auditor's command under the
    # governed trust store the router ran under: every chain and decision holds
    report = tmp_path / "report.json"
    audit = cli.run(
        "audit", "replay", "--from", clock.iso(began - timedelta(minutes=1)),
        "--to", clock.iso(clock.days(1)), "--trust", str(tmp_path / "trust.yaml"),
        "--config", str(cli.kafka_config(ex.settings, tmp_path / "auditor.yaml")),
        "--agreements-history", str(tmp_path / "history"),
        "--participant", ex.ids[0],  # and its two partners: this exchange only
        "--report", str(report), "--quiet",
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
    assert cli.summary(audit.stdout).endswith(": CLEAN"), audit.stdout
    counts = json.loads(report.read_text())["counts"]
    assert counts["decisions"] == len(plan.messages)  # each decided once, crashes or not


async def _settled_state(ex: Exchange, plan: Plan, within: float) -> list[str]:
    """The state's problems once there are none, or those left after ``within`` seconds."""
    left: list[str] = []

    async def settled() -> bool:
        left[:] = await _state_problems(ex, plan)
        return not left

    with contextlib.suppress(AssertionError):
        await eventually(settled, within=within, every=2, what="the state settled")
    return left


def _active(store: PostStore) -> set[str]:
    return {a.alert_id for a in store.active()}
