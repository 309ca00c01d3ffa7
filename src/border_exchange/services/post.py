"""A border post: consume the participant's partner feeds into the local store.

The post reads ``bx.<P>.from.<Q>`` as its own consumer group: every partner's feed
(a pattern subscription, so feeds of partners added later are picked up), or only
the feeds it names. Each record is verified end to end against the origin's key in
the trust store and must come from the feed of its origin; a record that fails is
refused and reported, never stored. Records and offsets go to SQLite in one
transaction, and on every (re)assignment the consumer seeks to the offsets stored
there, so a crash neither loses nor repeats an alert. A feed partition never read,
or whose stored offset the feed no longer holds, first starts from its state topic
(``post_state``): the gap is recorded and reported, the alerts cancelled or expired
meanwhile are erased. While the broker is
unreachable the loop backs off and retries; lookups only need the store. ``catch_up``
does all of that once: every feed read to the end it had when reading began, then it
returns what it did and the gaps it met (``post run --once``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Final

import structlog
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.errors import OffsetOutOfRangeError

from border_exchange.adapters.agreement_topic import AgreementTopic
from border_exchange.adapters.kafka_clients import (
    AIOKAFKA,
    Consumer,
    ConsumerRecord,
    KafkaClients,
    RebalanceListener,
    TopicPartition,
)
from border_exchange.adapters.kafka_settings import KafkaSettings, consumer_size_kwargs
from border_exchange.adapters.metrics import Metrics
from border_exchange.adapters.post_store import (
    Accepted,
    ApplyResult,
    Gap,
    Outcome,
    PostStore,
)
from border_exchange.domain.catalog import Operation
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.naming import feed_prefix, feed_topic, parse_feed_topic, post_group
from border_exchange.domain.permitted import (
    AGREEMENT_HEADER,
    AgreementBook,
    check_permitted,
    parse_reference,
)
from border_exchange.domain.retention import DEFAULT_POLICY
from border_exchange.domain.sealed_reading import SectionsRead, read_sections
from border_exchange.domain.section_seal import RecipientPrivateKey
from border_exchange.domain.signature_batch import SignatureHook
from border_exchange.domain.signing import signed_message, verify_trusted
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import (
    BorderExchangeError,
    DecodeError,
    KafkaError,
    KeyNotValidError,
    NotPermittedError,
    SignatureError,
    SignatureProblem,
    StoreError,
)
from border_exchange.services.post_state import StateStart, feed_partitions, refusal

log = structlog.get_logger(__name__)

PURGE_EVERY: Final = 60.0
"""Seconds between purges of expired alerts."""
PROBE_EVERY: Final = 5.0
"""Seconds of idleness after which the post asks the broker for its end offsets."""
PROBE_TIMEOUT: Final = 5.0
METADATA_WAIT: Final = 30.0
"""Seconds a post waits for the metadata to show a feed it should follow (a topic just
created shows on a broker a moment after the controller made it); then it reports the
feed unseen, never caught up."""


@dataclass(frozen=True, slots=True)
class PostConfig:
    """Who the post is and what it reads."""

    participant: str
    post: str
    partners: tuple[str, ...] = ()
    """Feeds to read; empty means every partner's feed, including later ones."""
    metadata_max_age_ms: int = 5000
    max_backoff: float = 30.0
    batch_records: int = 500
    purge_every: float = PURGE_EVERY
    grace: timedelta = DEFAULT_POLICY.grace
    """How long a cancelled or expired alert's row stays (without content) before it goes."""
    metadata_wait: float = METADATA_WAIT


def check_record(
    topic: str,
    value: bytes | None,
    trust: TrustStore,
    participant: str,
    agreements: AgreementBook | None = None,
    reference: bytes | None = None,
    private_keys: Sequence[RecipientPrivateKey] = (),
    signatures: SignatureHook | None = None,
) -> tuple[Any, SectionsRead]:
    """The verified envelope and the sections read of a feed record; raises why it is refused.

    With ``agreements``, the copy must also be one the agreement its ``reference``
    (the ``bx-agreement`` header) names permitted (``domain.permitted``). Sealed sections
    are opened with ``private_keys`` (the service's encryption keys, current and retired);
    one that does not open is refused with its reason and the others are kept.
    With ``signatures``, every check but the Ed25519 one is made here and that one is
    handed to the hook (``signature_batch``): the record counts only once it holds.
    """
    feed = parse_feed_topic(topic)
    if feed is None or feed[0] != participant:
        raise DecodeError(f"{topic} is not a feed of {participant}")
    if value is None:
        raise DecodeError("empty record")
    envelope = decode_envelope(value)
    if envelope.header.origin != feed[1]:
        raise SignatureError(
            f"origin {envelope.header.origin} does not own feed {topic}",
            SignatureProblem.BAD_SIGNATURE,
        )
    if signatures is None:
        verify_trusted(envelope, trust)
    else:
        key = trust.key_for(
            envelope.header.origin, envelope.header.key_id, envelope.header.issued_at
        )
        signatures(signed_message(envelope, key), key.raw)
    if agreements is not None:
        check_permitted(envelope.header, envelope.present_sections, reference, agreements)
    if envelope.header.operation is Operation.CANCEL:
        return envelope, read_sections(envelope, participant, ())
    return envelope, read_sections(envelope, participant, private_keys)


def agreement_reference(record: ConsumerRecord) -> bytes | None:
    """The ``bx-agreement`` header of ``record``, if it has one."""
    for name, value in record.headers or ():
        if name == AGREEMENT_HEADER:
            return bytes(value)
    return None


def outcome_of(
    record: ConsumerRecord,
    trust: TrustStore,
    participant: str,
    agreements: AgreementBook | None = None,
    private_keys: Sequence[RecipientPrivateKey] = (),
    signatures: SignatureHook | None = None,
    *,
    topic: str | None = None,
) -> Outcome:
    """Accept or refuse one consumed record (checking its agreement when ``agreements``).

    ``topic``: the feed to check the record as (its own topic when None); the outcome
    still names the topic it was read from. ``signatures``: see ``check_record`` (an
    Accepted outcome then counts only once its signature holds: ``refusal`` otherwise).
    """
    try:
        envelope, read = check_record(
            record.topic if topic is None else topic,
            record.value,
            trust,
            participant,
            agreements,
            agreement_reference(record) if agreements is not None else None,
            private_keys,
            signatures,
        )
    except (DecodeError, SignatureError, KeyNotValidError, NotPermittedError) as exc:
        return refusal(record, exc)
    for name, reason in read.refused.items():
        log.warning(
            "post.section_refused",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            message_id=envelope.header.message_id,
            section=name,
            reason=reason,
        )
    return Accepted(
        record.topic, record.partition, record.offset, envelope, dict(read.sections),
        read.refused, record.value if isinstance(record.value, bytes) else None,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What one catch-up (``post run --once``) did, and the gaps it met."""

    applied: ApplyResult
    gaps: tuple[Gap, ...]
    unseen: tuple[str, ...] = ()
    """Feeds the post should follow that the metadata did not show in full (within
    ``PostConfig.metadata_wait``): not read, so not caught up."""

    @property
    def healed(self) -> bool:
        """Whether every gap met was healed from a state topic (True when there was none)."""
        return all(gap.healed_from is not None for gap in self.gaps)


class _SeekToStore(RebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """On every assignment, seek each partition to the next offset stored in SQLite."""

    def __init__(self, consumer: Consumer, store: PostStore) -> None:
        self._consumer = consumer
        self._store = store
        self.unstarted = False
        """Set when a partition never started from its state was assigned (a feed that
        appeared meanwhile): the session ends and the next one bootstraps it."""

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing to do: offsets are stored with the data."""

    async def on_partitions_assigned(self, assigned: Any) -> None:
        """Seek to the stored offsets; hold a feed never read until it is bootstrapped."""
        stored = self._store.offsets()
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                await self._consumer.seek_to_beginning(tp)
                self._consumer.pause(tp)
                self.unstarted = True
            else:
                self._consumer.seek(tp, offset)
        log.info(
            "post.assigned", partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in assigned)
        )


class BorderPost:
    """Keeps a border post's store in step with its feeds."""

    def __init__(
        self,
        settings: KafkaSettings,
        config: PostConfig,
        store: PostStore,
        trust: TrustStore,
        agreements: AgreementTopic | None = None,
        private_keys: Sequence[RecipientPrivateKey] = (),
        metrics: Metrics | None = None,
        clients: KafkaClients = AIOKAFKA,
    ) -> None:
        self.settings = settings
        self.clients = clients
        """Where its consumers come from (``adapters.kafka_clients``)."""
        self.metrics = metrics or Metrics()
        _describe(self.metrics)
        self.private_keys = tuple(private_keys)
        """The service's encryption keys (current and retired) that open sealed sections."""
        self.config = config
        self.store = store
        self.trust = trust
        self.agreements = agreements
        """Where the signed agreements of the service come from; None: copies are not checked
        against an agreement (the origin's signature only)."""
        self.applied = ApplyResult()
        self.connected = asyncio.Event()
        self._last_probe = 0.0
        self._unseen: tuple[str, ...] = ()

    @property
    def topics(self) -> tuple[str, ...]:
        """The explicit feeds read, empty when reading every partner's feed."""
        return tuple(feed_topic(self.config.participant, q) for q in self.config.partners)

    @property
    def pattern(self) -> str:
        """The subscription pattern of every partner's feed."""
        return "^" + re.escape(feed_prefix(self.config.participant)) + r"[A-Z][A-Z0-9-]*$"

    def _consumer(self) -> Consumer:
        return self.clients.consumer(
            **self.settings.client_kwargs(),
            **consumer_size_kwargs(),
            group_id=post_group(self.config.participant, self.config.post),
            enable_auto_commit=False,
            # Never skip silently: an offset the feed no longer has ends the session, and
            # the next one reports the gap and starts that partition from its state.
            auto_offset_reset="none",
            isolation_level="read_committed",
            metadata_max_age_ms=self.config.metadata_max_age_ms,
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set, backing off and resuming while Kafka is unreachable."""
        stop = stop or asyncio.Event()
        delay = 1.0
        while not stop.is_set():
            try:
                await self._session(stop)
                delay = 1.0
            except (AioKafkaError, OSError, TimeoutError) as exc:
                self.connected.clear()
                log.warning("post.disconnected", error=repr(exc), retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                delay = min(delay * 2, self.config.max_backoff)

    async def _session(self, stop: asyncio.Event) -> None:
        """One consumer's life: subscribe, seek to the store's offsets, apply batches."""
        consumer = self._consumer()
        await consumer.start()
        try:
            await self.start_from_state(consumer)
            listener = _SeekToStore(consumer, self.store)
            if self.topics:
                consumer.subscribe(topics=list(self.topics), listener=listener)
            else:
                consumer.subscribe(pattern=self.pattern, listener=listener)
            last_purge = 0.0
            while not stop.is_set():
                if time.monotonic() - last_purge > self.config.purge_every:
                    self.purge()
                    last_purge = time.monotonic()
                try:
                    batch = await consumer.getmany(
                        timeout_ms=1000, max_records=self.config.batch_records
                    )
                except OffsetOutOfRangeError as exc:
                    log.warning("post.out_of_range", partitions=repr(exc), action="restart")
                    return
                if listener.unstarted:
                    log.info("post.new_feed", action="restart")
                    await asyncio.sleep(0.5)
                    return
                await self._apply(consumer, batch)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    def purge(self) -> None:
        """Drop the content of expired alerts, then the rows of those past their grace."""
        purged = self.store.purge_expired()
        erased = self.store.erase_after_grace(self.config.grace)
        if purged or erased:
            log.info("post.expired", purged=purged, erased=erased)

    async def start_from_state(self, consumer: Consumer) -> list[str]:
        """Bootstrap from the state topics every feed partition that is new or has a gap.

        Returns the feeds looked at.
        """
        # State records are checked like feed records, their agreement included.
        book = None if self.agreements is None else await self.agreements.refresh()
        feeds = await self.feeds(consumer, book)

        def check(
            record: ConsumerRecord,
            trust: TrustStore,
            participant: str,
            *,
            signatures: SignatureHook | None = None,
            topic: str | None = None,
        ) -> Outcome:
            return outcome_of(
                record, trust, participant, book, self.private_keys, signatures, topic=topic
            )

        starter = StateStart(
            self.settings, self.config.participant, self.store, self.trust, check, self.clients,
            metadata_wait=self.config.metadata_wait,
        )  # fmt: skip
        for done in await starter.run(feeds):
            self.applied = _added(self.applied, done.applied)
        self.purge()
        return feeds

    async def feeds(self, consumer: Consumer, book: AgreementBook | None) -> list[str]:
        """The feeds the post follows: those named (``--from``); or every partner's feed
        the cluster lists, the store has read, or an agreement sends to the service.

        The last two do not depend on the metadata of the moment: a feed that should be
        there and is not shown is waited for, then reported (``feed_partitions``).
        """
        if self.topics:
            return list(self.topics)
        pattern = re.compile(self.pattern)
        listed = {t for t in await consumer.topics() if pattern.match(t)}
        read = {topic for topic, _ in self.store.offsets()}
        agreed = set() if book is None else {
            feed_topic(self.config.participant, q) for q in book.senders()
        }  # fmt: skip
        return sorted(listed | read | agreed)

    async def catch_up(self, within: float) -> CatchUp:
        """Start from the state where needed, read every feed to its end, purge; once.

        The end is each feed partition's last stable offset when the reading starts.
        Unreachable brokers are retried until ``within`` seconds have passed, then the
        catch-up fails (``KafkaError``). Gaps met on the way are in the result.
        """
        before = len(self.store.gaps())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        delay = 1.0
        while True:
            try:
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError
                if await asyncio.wait_for(self._catch_up_session(), left):
                    break
                await asyncio.sleep(0.5)  # a partition to start from its state first
            except (AioKafkaError, OSError, TimeoutError) as exc:
                self.connected.clear()
                if loop.time() + delay >= deadline:
                    raise KafkaError(
                        f"the post did not catch up within {within:g} s: {exc!r}"
                    ) from exc
                log.warning("post.disconnected", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.max_backoff)
        self.purge()
        return CatchUp(self.applied, self.store.gaps()[before:], self._unseen)

    async def _catch_up_session(self) -> bool:
        """One consumer reading every feed partition to its end; False: start again."""
        consumer = self._consumer()
        await consumer.start()
        try:
            feeds = await self.start_from_state(consumer)
            stored = self.store.offsets()
            _, tps, self._unseen = await feed_partitions(
                consumer, feeds, stored.keys(), self.config.metadata_wait
            )
            if self._unseen:
                log.error(
                    "post.feed_unseen",
                    feeds=list(self._unseen),
                    waited=self.config.metadata_wait,
                    action="not caught up",
                )
            if any((tp.topic, tp.partition) not in stored for tp in tps):
                log.info("post.new_feed", action="restart")  # appeared after the bootstrap
                return False
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, stored[(tp.topic, tp.partition)])
            ends = await consumer.end_offsets(tps) if tps else {}
            while behind := [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                try:
                    batch = await consumer.getmany(
                        *behind, timeout_ms=1000, max_records=self.config.batch_records
                    )
                except OffsetOutOfRangeError as exc:
                    log.warning("post.out_of_range", partitions=repr(exc), action="restart")
                    return False
                await self._apply(consumer, batch)
            self.store.record_sync({(tp.topic, tp.partition): ends[tp] for tp in tps})
            self.connected.set()
            return True
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _book(
        self, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> AgreementBook | None:
        """The agreement book, read on when a copy names an agreement not in it yet."""
        if self.agreements is None:
            return None
        book = self.agreements.book
        for records in batch.values():
            for record in records:
                reference = parse_reference(agreement_reference(record))
                if reference is not None and reference not in book:
                    return await self.agreements.refresh()
        return book

    async def _apply(
        self, consumer: Consumer, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        started = time.perf_counter()
        book = await self._book(batch)
        outcomes: list[Outcome] = [
            outcome_of(record, self.trust, self.config.participant, book, self.private_keys)
            for records in batch.values()
            for record in records
        ]
        if outcomes:
            result = self.store.apply(outcomes)
            self.applied = _added(self.applied, result)
            counts = asdict(result)
            log.info("post.applied", records=len(outcomes), **counts)
            for kind, count in counts.items():
                if count:
                    self.metrics.inc("post_records_total", count, {"result": kind})
            self.metrics.observe("post_apply_seconds", time.perf_counter() - started)
        if outcomes:
            self._record_sync(consumer, consumer.assignment())
            await self._commit_courtesy(consumer, outcomes)
        elif time.monotonic() - self._last_probe > PROBE_EVERY:
            await self._probe(consumer)

    def _record_sync(self, consumer: Consumer, partitions: Any) -> None:
        """A fetch just succeeded: note the time and the end offsets it reported."""
        ends: dict[tuple[str, int], int] = {}
        for tp in partitions:
            end = consumer.last_stable_offset(tp)
            if end is None:
                end = consumer.highwater(tp)
            if end is not None:
                ends[(tp.topic, tp.partition)] = end
        self.store.record_sync(ends)
        stored = self.store.offsets()
        for (topic, partition), end in ends.items():
            lag = max(0, end - stored.get((topic, partition), 0))
            self.metrics.set("post_feed_lag", lag, {"feed": f"{topic}/{partition}"})
        self.metrics.set("post_last_sync_timestamp_seconds", time.time())
        self._last_probe = time.monotonic()
        self.connected.set()

    async def _probe(self, consumer: Consumer) -> None:
        """While idle, ask the broker for the end offsets: a sync when it answers."""
        self._last_probe = time.monotonic()
        assignment = list(consumer.assignment())
        if not assignment:
            return
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(assignment), PROBE_TIMEOUT)
        except (AioKafkaError, TimeoutError, OSError) as exc:
            self.connected.clear()
            log.info("post.unreachable", error=repr(exc))
            return
        self.store.record_sync({(tp.topic, tp.partition): end for tp, end in ends.items()})
        self.connected.set()

    async def _commit_courtesy(self, consumer: Consumer, outcomes: Sequence[Outcome]) -> None:
        """Commit to Kafka too, for lag monitoring only: SQLite stays the truth."""
        offsets: dict[TopicPartition, int] = {}
        for outcome in outcomes:
            offsets[TopicPartition(outcome.topic, outcome.partition)] = outcome.offset + 1
        try:
            await consumer.commit(offsets)
        except (AioKafkaError, BorderExchangeError) as exc:
            log.info("post.commit_skipped", error=repr(exc))


def _added(total: ApplyResult, more: ApplyResult) -> ApplyResult:
    return ApplyResult(
        total.stored + more.stored,
        total.cancelled + more.cancelled,
        total.stale + more.stale,
        total.rejected + more.rejected,
    )


def _describe(metrics: Metrics) -> None:
    metrics.describe("post_records_total", "Feed records applied to the store, by result.")
    metrics.describe("post_apply_seconds", "Seconds to check and store one fetched batch.")
    metrics.describe("post_feed_lag", "Records on the broker not yet stored, by feed partition.")
    metrics.describe("post_last_sync_timestamp_seconds", "When a fetch last succeeded (Unix).")


__all__ = ["BorderPost", "CatchUp", "PostConfig", "StoreError", "check_record", "outcome_of"]
