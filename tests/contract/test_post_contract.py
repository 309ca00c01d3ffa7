"""The border post's contract with Kafka (``services.post``, ``services.post_state``), on
both sides.

Feeds and their state topics are written as the router writes them: each copy in a
transaction with its alert's latest state (key: the alert id). A new post starts from the
state, follows the feed from where the state left it (a consumer group on a pattern, its
assignment heard by the listener), and a post whose next offset retention deleted meanwhile
records the gap and heals it from the state. An aborted copy is never stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from border_exchange.adapters.kafka_clients import TopicPartition
from border_exchange.adapters.post_store import PostStore
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.naming import feed_state_topic, feed_topic
from border_exchange.domain.samples import sample_alert
from border_exchange.services.post import BorderPost, PostConfig
from tests.contract.conftest import Side
from tests.exchange import random_ids
from tests.kafka.test_post import cancel_of, sealed, trust  # UGA's key in a trust store
from tests.waiting import eventually


class Router:
    """Writes copies to a feed and their state as the router does, in transactions."""

    def __init__(self, side: Side, me: str) -> None:
        self.side = side
        self.feed = feed_topic(me, "UGA")
        self.state = feed_state_topic(me, "UGA")
        self.transactions = 0

    async def deliver(self, envelopes: Sequence[Envelope], commit: bool = True) -> None:
        """One transaction: each envelope to the feed, and as its alert's latest state."""
        async with self.side.transaction(f"contract-post-{self.feed}", commit=commit) as producer:
            for envelope in envelopes:
                value, key = encode_envelope(envelope), envelope.header.alert_id.encode()
                for topic in (self.feed, self.state):
                    await (await producer.send(topic, value, key=key, partition=0))

    async def feed_end(self) -> int:
        """The feed's last stable offset, once every transaction's marker is written."""
        consumer: Any = self.side.clients.consumer(
            **self.side.settings.client_kwargs(), isolation_level="read_committed"
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.feed, 0)
            return int((await consumer.end_offsets([tp]))[tp])
        finally:
            await consumer.stop()


def _alert(alert_id: str) -> Envelope:
    return sealed(sample_alert(AlertType.VEHICLE_NOTICE, origin="UGA", language="en"), alert_id)


async def _settled(router: Router, at_least: int) -> int:
    """The feed's stable end once it reached ``at_least`` (the broker writes a transaction's
    markers just after answering its commit or abort)."""
    found = [0]

    async def reached() -> bool:
        found[0] = await router.feed_end()
        return found[0] >= at_least

    await eventually(reached, within=30, what=f"the feed stable up to {at_least}")
    return found[0]


async def test_a_post_starts_from_the_state_follows_its_feed_and_heals_a_gap(
    side: Side, tmp_path: Path
) -> None:
    me = random_ids(1)[0]
    router = Router(side, me)
    await side.create_topic(router.feed)
    await side.create_topic(router.state)
    first, second, third = _alert("vn-1"), _alert("vn-2"), _alert("vn-3")
    await router.deliver([first, second])  # feed offsets 0, 1; marker 2
    await router.deliver([cancel_of(second), third])  # 3, 4; marker 5
    await router.deliver([_alert("vn-aborted")], commit=False)  # 6 aborted; marker 7
    end = await _settled(router, 8)
    # Retention deleted the feed's first transaction: only the state still has vn-1.
    await side.delete_records(TopicPartition(router.feed, 0), 3)

    config = PostConfig(me, "kasindi", metadata_max_age_ms=1000)
    store = PostStore.open(tmp_path / "post.db")
    post = BorderPost(side.settings, config, store, trust(), clients=side.clients)
    done = await post.catch_up(within=60)

    assert done.gaps == ()  # a new post: started from the state, not a gap
    assert {a.alert_id for a in store.active()} == {"vn-1", "vn-3"}
    assert store.get("UGA", "vn-2") is None  # cancelled before the post began
    assert store.get("UGA", "vn-aborted") is None
    assert store.offsets() == {(router.feed, 0): end}

    # Following the feed: a consumer group on the feeds' pattern, positioned from the store.
    stop = asyncio.Event()
    following = asyncio.create_task(post.run(stop))
    await router.deliver([_alert("vn-4")])  # 8; marker 9
    end = await _settled(router, 10)
    await eventually(
        lambda: store.offsets().get((router.feed, 0), 0) >= end - 1,
        within=60,
        what="the post following its feed to vn-4",
    )
    stop.set()
    await asyncio.wait_for(following, 30)
    assert store.get("UGA", "vn-4") is not None
    assert post.applied.rejected == 0

    # Away while vn-5 was delivered and deleted: the gap is recorded and healed from the state.
    await router.deliver([_alert("vn-5")])  # 10; marker 11
    end = await _settled(router, 12)
    await side.delete_records(TopicPartition(router.feed, 0), end)
    done = await post.catch_up(within=60)
    (gap,) = done.gaps
    # expected: after vn-4 (offset 8); the store keeps the offset after each record applied
    assert (gap.topic, gap.expected, gap.first_available) == (router.feed, 9, end)
    assert gap.healed_from == router.state
    assert done.healed
    assert {a.alert_id for a in store.active()} == {"vn-1", "vn-3", "vn-4", "vn-5"}
    assert store.offsets() == {(router.feed, 0): end}
    store.close()
