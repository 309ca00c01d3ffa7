"""A border post's start from the state topics: bootstrap, gap detection, reconciliation.

Before a post follows its feeds it looks at each feed partition: where the store says
to resume, and which offsets the feed still holds. A partition never read, or whose
stored offset the feed no longer has (deleted by retention while the post was away),
is bootstrapped from its state topic (``bx.<P>.state.from.<Q>``, same partition):

1. the feed's end offset is read first (``read_committed``: the last stable offset);
2. then the state partition, from its start to its end; every transaction committed
   before step 1 has its state record in there, as the router writes both together;
3. each key's latest state record is verified like a feed record (refused ones are
   logged, counted and kept out); the store applies them, erases every alert of that
   partition the state no longer holds, and resumes the feed at the offset of step 1,
   all in one SQLite transaction.

Feed records after that offset may repeat a version the state already gave: the
store keeps the newer version only, so nothing is applied twice; nothing is lost,
as everything before it is in the state. A gap is recorded in the store (``post
status`` shows it) and logged, never skipped silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from border_exchange.adapters.kafka_clients import (
    AIOKAFKA,
    Consumer,
    ConsumerRecord,
    KafkaClients,
    TopicPartition,
)
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.post_store import Accepted, ApplyResult, Outcome, PostStore, Rejected
from border_exchange.domain.naming import feed_state_topic, parse_feed_topic
from border_exchange.domain.trust import TrustStore

log = structlog.get_logger("border_exchange.post")

Check = Callable[[ConsumerRecord, TrustStore, str], Outcome]
"""How the post checks one feed record (``post.outcome_of``)."""


async def feed_partitions(
    client: Consumer, feeds: Sequence[str]
) -> tuple[set[str], list[TopicPartition]]:
    """Every topic on the cluster, and the partitions of those of ``feeds`` that exist."""
    # aiokafka's public metadata calls do not refresh what partitions_for_topic reads
    cluster = await client._client.fetch_all_metadata()
    topics = set(cluster.topics())
    tps = [
        TopicPartition(topic, p)
        for topic in feeds
        if topic in topics
        for p in sorted(cluster.partitions_for_topic(topic) or ())
    ]
    return topics, tps


def needs_state(stored: int | None, first: int, end: int) -> str | None:
    """Why a feed partition must start from its state: ``"new"``, ``"gap"``, or None."""
    if stored is None:
        return "new"
    if stored < first or stored > end:
        # Deleted before the post read them; or beyond the end: the feed was recreated.
        return "gap"
    return None


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    """What one feed partition's bootstrap did."""

    feed: TopicPartition
    reason: str
    state_records: int
    applied: ApplyResult
    erased: int
    resumed_at: int


@dataclass
class StateStart:
    """Bootstraps the feed partitions of a post that need it."""

    settings: KafkaSettings
    participant: str
    store: PostStore
    trust: TrustStore
    check: Check
    clients: KafkaClients = AIOKAFKA
    """Where its reader comes from (``adapters.kafka_clients``)."""

    async def run(self, feeds: Sequence[str]) -> list[Bootstrapped]:
        """Bootstrap every partition of ``feeds`` that is new or has a gap."""
        reader = self.clients.consumer(
            **self.settings.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await reader.start()
        done: list[Bootstrapped] = []
        try:
            topics, tps = await feed_partitions(reader, feeds)
            if not tps:
                return done
            firsts = await reader.beginning_offsets(tps)
            ends = await reader.end_offsets(tps)
            stored = self.store.offsets()
            for tp in tps:
                expected = stored.get((tp.topic, tp.partition))
                reason = needs_state(expected, firsts[tp], ends[tp])
                if reason is None:
                    continue
                done.append(await self._start(reader, topics, tp, reason, expected, firsts, ends))
        finally:
            await reader.stop()
        return done

    async def _start(
        self,
        reader: Consumer,
        topics: set[str],
        tp: TopicPartition,
        reason: str,
        expected: int | None,
        firsts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
    ) -> Bootstrapped:
        feed = parse_feed_topic(tp.topic)
        assert feed is not None  # the post reads only its feeds
        origin = feed[1]
        state = feed_state_topic(self.participant, origin)
        if state not in topics:
            # No state to start from (an exchange provisioned before state topics): the
            # feed from its first record, as before; a gap cannot be healed, only reported.
            if reason == "gap":
                self.store.record_gap(tp.topic, tp.partition, expected, firsts[tp], None)
                log.error(
                    "post.gap",
                    feed=f"{tp.topic}/{tp.partition}",
                    expected=expected,
                    first_available=firsts[tp],
                    healed=False,
                    reason=f"no state topic {state}",
                )
            _, erased = self.store.bootstrap(origin, (tp.topic, tp.partition), [], None, firsts[tp])
            return Bootstrapped(tp, reason, 0, ApplyResult(), erased, firsts[tp])
        latest = await self._read_state(reader, TopicPartition(state, tp.partition))
        outcomes = [self._verified(record, tp.topic) for record in latest.values() if record.value]
        held = [key for key, record in latest.items() if record.value is not None]
        applied, erased = self.store.bootstrap(
            origin, (tp.topic, tp.partition), outcomes, held, ends[tp]
        )
        if reason == "gap":
            self.store.record_gap(tp.topic, tp.partition, expected, firsts[tp], state)
            log.warning(
                "post.gap",
                feed=f"{tp.topic}/{tp.partition}",
                expected=expected,
                first_available=firsts[tp],
                healed=True,
                state=state,
            )
        log.info(
            "post.bootstrapped",
            feed=f"{tp.topic}/{tp.partition}",
            reason=reason,
            state_records=len(latest),
            stored=applied.stored,
            refused=applied.rejected,
            erased=erased,
            resume_at=ends[tp],
        )
        return Bootstrapped(tp, reason, len(latest), applied, erased, ends[tp])

    async def _read_state(self, reader: Consumer, tp: TopicPartition) -> dict[str, ConsumerRecord]:
        """Each key's latest record in state partition ``tp`` (tombstones included)."""
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        end = (await reader.end_offsets([tp]))[tp]
        latest: dict[str, ConsumerRecord] = {}
        while await reader.position(tp) < end:
            batch = await reader.getmany(tp, timeout_ms=1000, max_records=5000)
            for record in batch.get(tp, []):
                if record.key is not None:
                    latest[record.key.decode("utf-8", "replace")] = record
        return latest

    def _verified(self, record: ConsumerRecord, feed_topic: str) -> Outcome:
        """``record`` checked as a record of ``feed_topic``, and named by where it was read."""
        as_feed = dataclasses.replace(record, topic=feed_topic)
        outcome = self.check(as_feed, self.trust, self.participant)
        if isinstance(outcome, Rejected):
            log.warning(
                "post.state_refused",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason=outcome.reason,
            )
        assert isinstance(outcome, Accepted | Rejected)
        return dataclasses.replace(outcome, topic=record.topic)
