"""Alerts outlive the logs: state topics, posts from any start, gateways, erasure.

A broker of its own with a compressed clock: outboxes and feeds keep seconds, state
segments roll after a second and the cleaner looks twice a second. Expiry and grace
run on an injected clock that the test moves forward by weeks. Topics are created
from the provisioning plan of a short ``RetentionPolicy``, uncompressed so that a
family name can be looked for in the broker's files.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from border_exchange.adapters import kafka_launcher, post_store
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.post_store import PostStore
from border_exchange.demo.sandbox import make_sandbox
from border_exchange.domain import naming
from border_exchange.domain.alerts import AlertInput
from border_exchange.domain.audit_values import Window
from border_exchange.domain.catalog import AlertType, Operation
from border_exchange.domain.provisioning import desired_topics
from border_exchange.domain.retention import RetentionPolicy
from border_exchange.domain.samples import sample_alert
from border_exchange.services.auditor import ReplayRequest, replay, summary_lines
from border_exchange.services.gateway import Gateway
from border_exchange.services.post import BorderPost, PostConfig
from border_exchange.services.router import PolicyView, Router
from tests.clock import AheadClock
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, random_ids, running

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
POLICY = RetentionPolicy(
    feed=3 * SECOND,
    feed_segment=SECOND,
    grace=DAY,
    state_tombstone=SECOND,
    state_segment=SECOND,
    state_max_compaction_lag=SECOND,
    state_dirty_ratio=0.01,
)
"""Logs kept seconds; grace measured on the injected clock (one day of it)."""

AGREEMENTS = """
version: "state-test"
agreements:
  - id: A-B
    parties: [P0, P1]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - {from: P0, to: P1, types: {WANTED_PERSON: {sections: all, max_handling: H2}}}
  - id: A-C
    parties: [P0, P2]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - {from: P0, to: P2, types: {WANTED_PERSON: {sections: all, max_handling: H2}}}
"""


@pytest.fixture(scope="module")
def compressed() -> Iterator[KafkaCluster]:
    """A broker that applies retention and compaction within seconds."""
    info = kafka_launcher.start_cluster(1, overrides=kafka_launcher.COMPRESSED_CLOCK)
    try:
        admin = KafkaSettings(
            info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
        )
        yield KafkaCluster(admin=admin, info=info)
    finally:
        kafka_launcher.stop_cluster(info, remove=True)


async def _provisioned(kafka: KafkaCluster, ex: Exchange) -> None:
    specs = desired_topics(ex.sandbox.trust, 1, POLICY)
    admin = AIOKafkaAdminClient(**kafka.admin.client_kwargs())
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    s.name,
                    s.partitions,
                    s.replication,
                    topic_configs={
                        **s.configs,
                        "compression.type": "uncompressed",
                        "file.delete.delay.ms": "0",
                    },
                )
                for s in specs.values()
            ]
        )
        assert [e for e in response.topic_errors if e[1]] == []
    finally:
        await admin.close()


def _wanted(origin: str, family: str, expires_at: datetime) -> AlertInput:
    base = sample_alert(AlertType.WANTED_PERSON, origin=origin, alert_id=uuid.uuid4().hex)
    data = base.model_dump()
    data["sections"]["identity"]["family_names"] = [family]
    data["expires_at"] = expires_at
    data["handling_code"] = "H2"
    return type(base).model_validate(data)


async def _until(check: Callable[[], object], within: float = 60.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.3)


async def _emptied(settings: KafkaSettings, topics: Iterable[str]) -> bool:
    """Whether retention has deleted every record of ``topics``."""
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(3)]
        firsts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return all(firsts[tp] == ends[tp] for tp in tps) and any(ends[tp] for tp in tps)
    finally:
        await consumer.stop()


def _files_holding(directory: Path, needles: Iterable[str]) -> dict[str, list[str]]:
    """Which of ``needles`` occur in the bytes of which files under ``directory``."""
    found: dict[str, list[str]] = {}
    paths = [p for p in directory.rglob("*") if p.is_file()] if directory.is_dir() else []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted by the broker meanwhile
            continue
        for needle in needles:
            if needle.encode() in data:
                found.setdefault(needle, []).append(path.name)
    return found


def _state_dirs(kafka: KafkaCluster, topics: Iterable[str]) -> list[Path]:
    assert kafka.info is not None
    data = Path(kafka.info.nodes[0].data_dir) / "data"
    return [data / f"{t}-{p}" for t in topics for p in range(3)]


def _in_state(kafka: KafkaCluster, topics: Iterable[str], names: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for directory in _state_dirs(kafka, topics):
        found.update(_files_holding(directory, names))
    return found


def _in_store(path: Path, names: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for file in path.parent.glob(path.name + "*"):
        data = file.read_bytes()
        found.update(n for n in names if n.encode() in data)
    return found


@asynccontextmanager
async def _post(
    ex: Exchange, participant: str, path: Path, clock: AheadClock
) -> AsyncIterator[tuple[BorderPost, PostStore]]:
    store = PostStore.open(path, clock=clock)
    post = BorderPost(
        ex.settings,
        PostConfig(participant, "east", purge_every=1.0, grace=POLICY.grace),
        store,
        ex.sandbox.trust,
    )
    try:
        async with running(post):
            yield post, store
    finally:
        store.close()


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master")}


def _active(store: PostStore) -> set[str]:
    return {a.alert_id for a in store.active()}


async def test_alerts_outlive_the_logs_and_their_personal_data_goes_after_grace(
    compressed: KafkaCluster, tmp_path: Path
) -> None:
    kafka = compressed
    ids = random_ids(3)
    a, b, c = ids
    text = AGREEMENTS
    for i, pid in enumerate(ids):
        text = text.replace(f"P{i}", pid)
    now = datetime.now(UTC)
    ex = Exchange(kafka, make_sandbox(ids, text, start=now - DAY), ids)
    await _provisioned(kafka, ex)
    clock = AheadClock()
    names = {
        kind: f"ZZ{kind.upper()}{uuid.uuid4().hex[:8].upper()}"
        for kind in ("keep", "cancel", "expire")
    }
    router = Router(
        ex.settings,
        PolicyView.build(ex.sandbox.trust, ex.sandbox.agreements),
        ex.sandbox.hub_key,
        ex.sandbox.key_ids["hub"],
        tuning=ex.tuning(retention=POLICY, checkpoint_interval=0.5),
        clock=clock,
    )

    def gateway() -> Gateway:
        return Gateway(
            ex.settings, a, ex.sandbox.keys[a], ex.sandbox.key_ids[a], ex.sandbox.trust, clock
        )

    early_db, late_db = tmp_path / "early.db", tmp_path / "late.db"
    feeds = [naming.feed_topic(b, a), naming.feed_topic(c, a)]
    states = [naming.feed_state_topic(b, a), naming.feed_state_topic(c, a)]
    states.append(naming.outbox_state_topic(a))
    async with running(router):
        async with gateway() as gw:
            keep = await gw.publish(_wanted(a, names["keep"], now + 365 * DAY))
            cancel = await gw.publish(_wanted(a, names["cancel"], now + 365 * DAY))
            expire = await gw.publish(_wanted(a, names["expire"], now + 10 * DAY))
            everyone = {keep.alert_id, cancel.alert_id, expire.alert_id}
            async with _post(ex, b, early_db, clock) as (_, store):
                await _until(lambda: _active(store) == everyone, what="early post synced")
            assert _in_store(early_db, names.values()) == set(names.values())  # it can fail
            await gw.cancel(cancel.alert_id, "warrant withdrawn")

        # -- the logs forget: outbox and feeds are empty, the state is not
        await _until(
            lambda: _emptied(ex.settings, [*feeds, naming.outbox_topic(a)]),
            what="retention deleted the outbox and feeds",
        )
        in_force = {keep.alert_id, expire.alert_id}
        async with _post(ex, b, late_db, clock) as (late, store):
            await _until(lambda: _active(store) == in_force, what="late post bootstrapped")
            assert store.get(a, cancel.alert_id) is None
            assert not store.gaps()  # a new post has no gap: it starts from the state
            # its search indexes, left out while it loaded, are built once it has
            assert [h.alert.alert_id for h in store.match_name(names["keep"])] == [keep.alert_id]
            await _until(lambda: set(post_store._SEARCH_INDEXES) <= _indexes(late_db),
                         what="the new post's search indexes built")  # fmt: skip
        assert late.applied.stored == len(in_force)
        assert late.applied.rejected == 0
        async with _post(ex, b, early_db, clock) as (_, store):
            await _until(lambda: store.gaps(), what="the early post reports its gap")
            await _until(lambda: _active(store) == in_force, what="early post came back")
            gaps = store.gaps()
            assert {g.healed_from for g in gaps} == {naming.feed_state_topic(b, a)}
            assert all(g.expected is not None and g.expected < g.first_available for g in gaps)
            assert store.get(a, cancel.alert_id) is None

        # -- a gateway on a fresh machine cancels an alert whose outbox records are gone
        async with gateway() as fresh:
            assert fresh.history(keep.alert_id) is not None
            receipt = await fresh.cancel(keep.alert_id, "person arrested")
        assert receipt.version == 2
        for recipient in (b, c):
            copies = await ex.feed(recipient, a, expect=1)
            assert [(e.header.alert_id, e.header.operation) for e in copies] == [
                (keep.alert_id, Operation.CANCEL)
            ]

        # -- after expiry plus grace: gone from every state topic and every store
        # The cancelled alerts' values may be compacted away already (their cancels, which
        # carry no section, superseded them); the one in force is there.
        assert names["expire"] in _in_state(kafka, states, names.values())
        clock.ahead = 20 * DAY
        await _until(
            lambda: not _in_state(kafka, states, names.values()),
            what="compaction erased the family names from the state topics",
        )
    for path in (early_db, late_db):
        async with _post(ex, b, path, clock) as (_, store):
            await _until(lambda: not _active(store), what="posts reconciled")
            await _until(lambda: not store.version_of(a, keep.alert_id), what="rows erased")
        assert _in_store(path, names.values()) == set(), path.name

    # -- the audit of a window whose outbox and feed records are gone: CLEAN, with counts
    await _until(
        lambda: _emptied(ex.settings, [*feeds, naming.outbox_topic(a)]),
        what="retention deleted the last outbox and feed records",
    )
    window = Window(now - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    verdict = await replay(ex.settings, ex.sandbox.trust, ReplayRequest(window))
    assert verdict.clean, summary_lines(verdict)
    assert verdict.stats.decisions == 5  # three creates, two cancels: each re-evaluated
    assert (verdict.stats.erased_outbox, verdict.stats.erased_feed) == (5, 10)
    assert any(
        "erased under retention: 5 outbox records" in line for line in summary_lines(verdict)
    )
