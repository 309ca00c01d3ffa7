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

import asyncio
import functools
import gc
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from border_exchange.adapters.kafka_clients import (
    AIOKAFKA,
    Consumer,
    ConsumerRecord,
    KafkaClients,
    TopicPartition,
)
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.post_store import (
    Accepted,
    ApplyResult,
    Outcome,
    PostStore,
    Prepared,
    Rejected,
)
from border_exchange.domain.naming import feed_state_topic, parse_feed_topic
from border_exchange.domain.signature_batch import SignatureHook, signature_checks
from border_exchange.domain.signing import bad_signature
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import DecodeError, KeyNotValidError, NotPermittedError, SignatureError
from border_exchange.services import check_pool

log = structlog.get_logger("border_exchange.post")


class Check(Protocol):
    """How the post checks one feed record (``post.outcome_of``): as a record of ``topic``
    (its own when None), its Ed25519 check handed to ``signatures`` when given."""

    def __call__(
        self,
        record: ConsumerRecord,
        trust: TrustStore,
        participant: str,
        *,
        signatures: SignatureHook | None = None,
        topic: str | None = None,
    ) -> Outcome: ...


def refusal(
    record: ConsumerRecord,
    exc: DecodeError | SignatureError | KeyNotValidError | NotPermittedError,
) -> Rejected:
    """The post's refusal of ``record`` (of a feed or a state topic) for ``exc``, logged."""
    reason = getattr(exc, "reason", None)
    text = f"{reason}: {exc}" if reason is not None else f"{type(exc).__name__}: {exc}"
    log.warning(
        "post.refused",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=text,
    )
    return Rejected(record.topic, record.partition, record.offset, text)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one bulk of work, then on again.

    A bootstrap holds a partition's records and their decoded alerts (millions of
    objects) while it makes more: each full collection would walk all of them, and
    they form no reference cycles to collect. Measured: 14 % of a 30,000-alert
    bootstrap's time (docs/benchmarks.md, bench_post_bootstrap).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def feed_partitions(
    client: Consumer,
    feeds: Sequence[str],
    known: Collection[tuple[str, int]] = (),
    within: float = 0.0,
) -> tuple[set[str], list[TopicPartition], tuple[str, ...]]:
    """Every topic on the cluster, the partitions of ``feeds`` it shows, and the feeds
    it does not show in full.

    A feed is shown in full when the metadata lists it with partitions, every one of
    ``known`` (the partitions the store has read) among them. A broker's metadata lags
    behind the controller's (a topic just created, a partition just added), so it is
    asked again until ``within`` seconds have passed; what is still missing is returned,
    for the caller to report: a post must not call a feed it cannot see caught up.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    delay = 0.1
    while True:
        # aiokafka's public metadata calls do not refresh what partitions_for_topic reads
        cluster = await client._client.fetch_all_metadata()
        topics = set(cluster.topics())
        shown = {
            topic: sorted(cluster.partitions_for_topic(topic) or ()) if topic in topics else []
            for topic in feeds
        }
        unseen = tuple(
            topic
            for topic in feeds
            if not shown[topic] or any(t == topic and p not in shown[topic] for t, p in known)
        )
        left = deadline - loop.time()
        if not unseen or left <= 0:
            break
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, 2.0)
    tps = [TopicPartition(topic, p) for topic in feeds for p in shown[topic]]
    return topics, tps, unseen


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


@dataclass(frozen=True, slots=True)
class _Start:
    """One feed partition's bootstrap, read and verified, to store."""

    feed: TopicPartition
    reason: str
    expected: int | None
    first: int
    end: int
    origin: str
    state: str | None
    """The state topic read, or None: there is none."""
    records: int
    outcomes: list[Outcome | Prepared]
    """Checked records (accepted ones prepared already where a worker checked them)."""
    held: list[str]


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
    processes: bool = True
    """Whether a large state is checked in a worker process (``check_pool``)."""
    metadata_wait: float = 0.0
    """Seconds to wait for a feed the metadata does not show (``feed_partitions``)."""
    _pool: check_pool.CheckPool | None = field(default=None, init=False, repr=False)

    async def run(self, feeds: Sequence[str]) -> list[Bootstrapped]:
        """Bootstrap every partition of ``feeds`` that is new or has a gap.

        One partition is stored (on a worker thread: SQLite works without the GIL) while
        the next is read and verified; the store is never written by two at once.
        """
        reader = self.clients.consumer(
            **self.settings.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await reader.start()
        done: list[Bootstrapped] = []
        storing: asyncio.Future[Bootstrapped] | None = None
        self._pool = None
        deferred = False
        try:
            stored = self.store.offsets()
            topics, tps, unseen = await feed_partitions(
                reader, feeds, stored.keys(), self.metadata_wait
            )
            if unseen:
                log.warning("post.feed_unseen", feeds=list(unseen), action="not bootstrapped")
            if not tps:
                return done
            firsts = await reader.beginning_offsets(tps)
            ends = await reader.end_offsets(tps)
            deferred = self.store.defer_indexes()  # a new or rebuilt post: indexed once
            with collector_paused():
                for tp in tps:
                    expected = stored.get((tp.topic, tp.partition))
                    reason = needs_state(expected, firsts[tp], ends[tp])
                    if reason is None:
                        continue
                    start = await self._prepare(reader, topics, tp, reason, expected, firsts, ends)
                    if storing is not None:
                        done.append(await storing)
                    storing = asyncio.ensure_future(asyncio.to_thread(self._store, start))
                    # Only the thread holds it now: freed once stored (by its reference
                    # count), not walked by the first collection after the pause.
                    del start
                if storing is not None:
                    done.append(await storing)
        finally:
            if storing is not None and not storing.done():
                await asyncio.wait([storing])  # a thread cannot be cancelled: let it end
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            if deferred:
                await asyncio.to_thread(self.store.build_indexes)
            await reader.stop()
        return done

    async def _prepare(
        self,
        reader: Consumer,
        topics: set[str],
        tp: TopicPartition,
        reason: str,
        expected: int | None,
        firsts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
    ) -> _Start:
        """Feed partition ``tp``'s state, read and verified, ready to store."""
        feed = parse_feed_topic(tp.topic)
        assert feed is not None  # the post reads only its feeds
        origin = feed[1]
        state = feed_state_topic(self.participant, origin)
        if state not in topics:
            return _Start(tp, reason, expected, firsts[tp], ends[tp], origin, None, 0, [], [])
        latest = await self._read_state(reader, TopicPartition(state, tp.partition))
        held = [key for key, record in latest.items() if record.value is not None]
        outcomes = await self._verified([r for r in latest.values() if r.value], tp.topic)
        return _Start(
            tp, reason, expected, firsts[tp], ends[tp], origin, state, len(latest), outcomes, held
        )

    def _store(self, start: _Start) -> Bootstrapped:
        """Store a prepared partition's state (or its absence) and report any gap."""
        tp, reason, expected, first = start.feed, start.reason, start.expected, start.first
        if start.state is None:
            # No state to start from (an exchange provisioned before state topics): the
            # feed from its first record, as before; a gap cannot be healed, only reported.
            if reason == "gap":
                self.store.record_gap(tp.topic, tp.partition, expected, first, None)
                log.error(
                    "post.gap",
                    feed=f"{tp.topic}/{tp.partition}",
                    expected=expected,
                    first_available=first,
                    healed=False,
                    reason=f"no state topic {feed_state_topic(self.participant, start.origin)}",
                )
            _, erased = self.store.bootstrap(
                start.origin, (tp.topic, tp.partition), [], None, first
            )
            return Bootstrapped(tp, reason, 0, ApplyResult(), erased, first)
        applied, erased = self.store.bootstrap(
            start.origin, (tp.topic, tp.partition), start.outcomes, start.held, start.end
        )
        if reason == "gap":
            self.store.record_gap(tp.topic, tp.partition, expected, first, start.state)
            log.warning(
                "post.gap",
                feed=f"{tp.topic}/{tp.partition}",
                expected=expected,
                first_available=first,
                healed=True,
                state=start.state,
            )
        log.info(
            "post.bootstrapped",
            feed=f"{tp.topic}/{tp.partition}",
            reason=reason,
            state_records=start.records,
            stored=applied.stored,
            refused=applied.rejected,
            erased=erased,
            resume_at=start.end,
        )
        return Bootstrapped(tp, reason, start.records, applied, erased, start.end)

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

    async def _verified(
        self, records: Sequence[ConsumerRecord], feed_topic: str
    ) -> list[Outcome | Prepared]:
        """``records`` checked as records of ``feed_topic``, named by where they were read;
        accepted ones come prepared for the store where worker processes checked them.

        Many records are checked in worker processes (``check_pool``), beside the store's
        work on the partition before. Otherwise here, the Ed25519 checks in batches on a
        worker thread (``signature_batch``) while the next records are decoded; a record
        whose signature fails is refused.
        """
        if self.processes and len(records) >= check_pool.POOL_FROM and check_pool.available():
            if self._pool is None:
                self._pool = check_pool.CheckPool(self.check, self.trust, self.participant)
            checked: list[Outcome | Prepared] = list(await self._pool.check(records, feed_topic))
            self._log_refused(checked)
            return checked
        outcomes: list[Outcome] = []
        with signature_checks() as checks:
            for index, record in enumerate(records):
                hook = functools.partial(checks.add, index)
                outcomes.append(
                    self.check(
                        record, self.trust, self.participant, signatures=hook, topic=feed_topic
                    )
                )
            failed = await checks.failed_async() if checks.count else []
        for index in failed:
            outcome = outcomes[index]
            if isinstance(outcome, Accepted):
                outcomes[index] = refusal(records[index], bad_signature(outcome.envelope.header))
        self._log_refused(outcomes)
        return list(outcomes)

    @staticmethod
    def _log_refused(outcomes: Sequence[Outcome | Prepared]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Rejected):
                log.warning(
                    "post.state_refused",
                    topic=outcome.topic,
                    partition=outcome.partition,
                    offset=outcome.offset,
                    reason=outcome.reason,
                )
