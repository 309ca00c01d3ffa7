"""The whole data path on the in-memory Kafka, in a second: a gateway publishes, the router
routes, a border post stores, the auditor replays a clean period; and a second copy
slipped into a feed behind the router's back is what the replay reports.

Each service runs its real Kafka code through the seam (``adapters.kafka_clients``); the
contract tests (``tests/contract/``) hold the fake to the broker's behaviour.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from border_exchange.adapters.agreement_topic import AgreementTopic
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.post_store import PostStore
from border_exchange.cli.post import EXIT_CAUGHT_UP, EXIT_GAP_NOT_HEALED, _caught_up
from border_exchange.demo.sandbox import Sandbox, make_sandbox, open_agreements
from border_exchange.domain import naming
from border_exchange.domain.audit_values import ViolationCode, Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.samples import sample_alert
from border_exchange.services.auditor import Progress, ReplayRequest, replay
from border_exchange.services.gateway import Gateway, Receipt
from border_exchange.services.post import BorderPost, PostConfig
from border_exchange.services.router import PolicyView, Router, RouterTuning
from tests.exchange import exchange_topics, running
from tests.fake_kafka import FakeKafka
from tests.waiting import eventually

SETTINGS = KafkaSettings("fake:9092")
A, B = "CAF", "COD"


def naming_key(record: Any) -> str:
    """The alert id a feed or state record is keyed by."""
    return str(record.key.decode())


def _committed(cluster: FakeKafka, topic: str) -> list[Any]:
    """The committed records of ``topic``."""
    return [
        e.record
        for log in cluster.partitions(topic)
        for e in log
        if e.record is not None and e.state == "committed"
    ]


async def _routed(
    cluster: FakeKafka, *, stale: frozenset[str] = frozenset()
) -> tuple[Sandbox, list[Receipt]]:
    """Three alerts of A published and routed to B's feed (and the agreements published)."""
    for name, partitions, _ in exchange_topics([A, B]):
        cluster.create_topic(name, partitions)
    cluster.stale |= stale
    sandbox = make_sandbox([A, B], open_agreements([(A, B)]))
    async with Gateway(
        SETTINGS, A, sandbox.keys[A], sandbox.key_ids[A], sandbox.trust, clients=cluster.clients
    ) as gateway:
        kinds = (AlertType.WANTED_PERSON, AlertType.VEHICLE_NOTICE, AlertType.BORDER_INCIDENT)
        receipts = await gateway.publish_batch(
            [sample_alert(kind, origin=A, alert_id=uuid.uuid4().hex) for kind in kinds]
        )
    router = Router(
        SETTINGS,
        PolicyView.build(sandbox.trust, sandbox.agreements, sandbox.governance()),
        sandbox.hub_key,
        sandbox.key_ids["hub"],
        tuning=RouterTuning(topic_refresh=0.1, checkpoint_interval=0.1),
        clients=cluster.clients,
    )
    feed = naming.feed_topic(B, A)
    async with running(router):
        await eventually(
            lambda: len(_committed(cluster, feed)) == len(receipts), what="every copy in B's feed"
        )
    return sandbox, receipts


async def _exchange(cluster: FakeKafka, tmp_path: Path) -> tuple[Any, Window, PostStore]:
    """Three alerts of A published, routed to B and stored at B's post; the period's window."""
    started = datetime.now(UTC)
    sandbox, receipts = await _routed(cluster)
    store = PostStore.open(tmp_path / "post.db")
    post = BorderPost(
        SETTINGS, PostConfig(B, "kasindi"), store, sandbox.trust, clients=cluster.clients
    )
    await post.catch_up(within=10)
    assert {a.alert_id for a in store.active()} == {r.alert_id for r in receipts}
    window = Window(started - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    return sandbox, window, store


async def test_the_data_path_runs_on_the_fake_and_its_replay_is_clean(tmp_path: Path) -> None:
    cluster = FakeKafka()
    sandbox, window, store = await _exchange(cluster, tmp_path)
    store.close()
    for participant in (A, B):
        verdict = await replay(
            SETTINGS,
            sandbox.trust,
            ReplayRequest(window, participant=participant),
            progress=Progress(every=1e9),
            clients=cluster.clients,
        )
        assert verdict.clean, verdict.violations
        assert verdict.stats.decisions == 3
        assert verdict.stats.feed_records == 3


async def test_a_feed_the_routers_metadata_does_not_show_yet_gets_its_copies_and_states() -> None:
    cluster = FakeKafka()
    feed, state = naming.feed_topic(B, A), naming.feed_state_topic(B, A)
    # provisioned after the router's consumer last refreshed its metadata
    _, receipts = await _routed(cluster, stale=frozenset({feed, state}))
    routed = {r.alert_id for r in receipts}
    copies = _committed(cluster, feed)
    assert {naming_key(c) for c in copies} == routed
    # each copy in the partition of its key, and its state record beside it
    assert {(c.key, c.partition) for c in _committed(cluster, state)} == {
        (c.key, c.partition) for c in copies
    }


async def test_a_copy_slipped_into_a_feed_behind_the_router_is_reported_by_the_replay(
    tmp_path: Path,
) -> None:
    cluster = FakeKafka()
    sandbox, window, store = await _exchange(cluster, tmp_path)
    store.close()
    feed = naming.feed_topic(B, A)
    copy = _committed(cluster, feed)[0]
    producer: Any = cluster.clients.producer()
    await producer.start()
    await producer.send_and_wait(feed, copy.value, key=copy.key, headers=list(copy.headers))
    await producer.stop()

    verdict = await replay(
        SETTINGS,
        sandbox.trust,
        ReplayRequest(window, participant=B),
        progress=Progress(every=1e9),
        clients=cluster.clients,
    )
    (violation,) = verdict.violations
    assert (violation.code, violation.topic) == (ViolationCode.FEED_DUPLICATE, feed)
    assert f"already delivered at offset {copy.offset}" in violation.detail


async def test_a_post_waits_for_a_feed_the_metadata_does_not_show_yet(tmp_path: Path) -> None:
    cluster = FakeKafka()
    sandbox, receipts = await _routed(cluster)
    feed = naming.feed_topic(B, A)
    cluster.unlisted[feed] = 5  # the next five metadata answers lag behind: no feed in them
    with PostStore.open(tmp_path / "post.db") as store:
        agreements = AgreementTopic(SETTINGS, sandbox.trust, B, clients=cluster.clients)
        post = BorderPost(
            SETTINGS, PostConfig(B, "kasindi", metadata_wait=10), store, sandbox.trust,
            agreements, clients=cluster.clients,
        )  # fmt: skip
        done = await post.catch_up(within=10)
        assert cluster.unlisted[feed] == 0  # it was asked until the feed showed
        assert done.unseen == ()
        assert _caught_up(done) == EXIT_CAUGHT_UP
        assert {a.alert_id for a in store.active()} == {r.alert_id for r in receipts}


async def test_a_feed_the_post_should_follow_and_cannot_see_is_reported_not_caught_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = FakeKafka()
    sandbox, receipts = await _routed(cluster)
    feed = naming.feed_topic(B, A)
    cluster.unlisted[feed] = 10**9
    config = PostConfig(B, "kasindi", metadata_wait=0.3)
    with PostStore.open(tmp_path / "post.db") as store:
        # A new post knows the feed from its agreements: A sends to B.
        agreements = AgreementTopic(SETTINGS, sandbox.trust, B, clients=cluster.clients)
        post = BorderPost(
            SETTINGS, config, store, sandbox.trust, agreements, clients=cluster.clients
        )
        done = await post.catch_up(within=10)
        assert done.unseen == (feed,)
        assert store.offsets() == {}
        assert store.active() == []
        assert _caught_up(done) == EXIT_GAP_NOT_HEALED
        assert f"not read: {feed}" in capsys.readouterr().out

        # Once shown, the feed is read; a post without agreements then knows it from its
        # store: the feed it has read, hidden again, is not caught up either.
        cluster.unlisted[feed] = 0
        assert (await post.catch_up(within=10)).unseen == ()
        assert {a.alert_id for a in store.active()} == {r.alert_id for r in receipts}
        cluster.unlisted[feed] = 10**9
        alone = BorderPost(SETTINGS, config, store, sandbox.trust, clients=cluster.clients)
        assert (await alone.catch_up(within=10)).unseen == (feed,)
