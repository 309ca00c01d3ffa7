"""A participant's gateway: seal alerts as their origin and publish them to its outbox.

Every publish is one Kafka transaction of an idempotent producer with ``acks=all``
under the participant's transactional id, so a batch is visible to the router
entirely or not at all. The gateway knows every alert it ever published (last
version, type, header, cancelled or not) by reading its outbox state (compacted: the
last version of every alert in force, written in the same transaction as each
publish) and then its outbox, with ``read_committed``, when it starts; an update is a
publish with an existing alert id and gets the next version from that history, so a
gateway on a fresh machine can update or cancel any alert in force, however old.

It is about 600 lines because the history, the sealing and the transactional send all
work on one ``Gateway``'s producer and history; the HTTP contract is ``gateway_http``'s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

import structlog
from aiokafka.errors import KafkaError as AioKafkaError
from nacl.signing import SigningKey

from border_exchange.adapters.kafka_clients import (
    AIOKAFKA,
    Consumer,
    KafkaClients,
    Producer,
    TopicPartition,
    fresh_partitions,
)
from border_exchange.adapters.kafka_settings import (
    KafkaSettings,
    consumer_size_kwargs,
    producer_size_kwargs,
)
from border_exchange.adapters.producer_discard import discard
from border_exchange.domain import limits
from border_exchange.domain.alerts import AlertInput
from border_exchange.domain.catalog import Operation
from border_exchange.domain.encoding import decode_envelope, encode_envelope, envelope_fingerprint
from border_exchange.domain.envelope import Envelope, Header
from border_exchange.domain.naming import (
    gateway_transactional_id,
    outbox_state_topic,
    outbox_topic,
)
from border_exchange.domain.policy import PolicyInput
from border_exchange.domain.recipients import SectionRecipients
from border_exchange.domain.section_seal import Recipient
from border_exchange.domain.signing import seal, sign
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import (
    BorderExchangeError,
    CommitUnknownError,
    DecodeError,
    KafkaError,
    KeyNotValidError,
    KeyProblem,
    ValidationError,
)

log = structlog.get_logger(__name__)

RETRY_FOR: Final = 180.0
"""Seconds a publish keeps retrying its transaction while the cluster is unavailable."""

ABORT_TIMEOUT: Final = 5.0
"""Seconds an abort or a stop may wait for the broker; past that the next producer fences."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a published message landed."""

    message_id: str
    alert_id: str
    version: int
    partition: int
    offset: int
    operation: Operation


@dataclass(frozen=True, slots=True)
class AlertHistory:
    """What the gateway last published for one alert."""

    header: Header

    @property
    def version(self) -> int:
        """The last published version."""
        return self.header.version

    @property
    def cancelled(self) -> bool:
        """Whether the alert was cancelled (no further version may follow)."""
        return self.header.operation is Operation.CANCEL


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A request to withdraw alert ``alert_id``, for ``reason``."""

    alert_id: str
    reason: str


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class Gateway:
    """Publishes ``participant``'s alerts, signed with ``signing_key`` (key ``key_id``).

    Use as ``async with Gateway(...) as gateway: await gateway.publish(alert)``. With a
    ``trust`` store, the key must be the participant's and valid now.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        participant: str,
        signing_key: SigningKey,
        key_id: str,
        trust: TrustStore | None = None,
        clock: Clock = _now,
        *,
        retry_for: float = RETRY_FOR,
        producer_options: dict[str, Any] | None = None,
        recipients: SectionRecipients | None = None,
        clients: KafkaClients = AIOKAFKA,
        trust_updates: Callable[[], TrustStore | None] | None = None,
    ) -> None:
        self.settings = settings
        self._clients = clients
        """Where its producer and consumers come from (``adapters.kafka_clients``)."""
        self.recipients = recipients
        """With it, every section is sealed for the recipients the signed agreements in
        force permit (``domain.recipients``); without it, sections go in clear."""
        self._trust_updates = trust_updates
        """Asked before each sealing for a trust store reloaded since (``TrustWatch.poll``
        in ``gateway serve``): a key rotated or revoked there is followed at once."""
        self.participant = participant
        self.topic = outbox_topic(participant)
        self._signing_key = signing_key
        self.key_id = key_id
        self._trust = trust
        self._clock = clock
        self._retry_for = retry_for
        self._producer_options = producer_options or {}
        self._producer: Producer | None = None
        self._history: dict[str, AlertHistory] = {}
        self._state_topic: str | None = None
        """The outbox state topic, once found to exist."""
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        self._check_key()
        await self._start_producer()
        try:
            self._history = await self._read_history()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the producer."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def _check_key(self) -> None:
        if self._trust is None:
            return
        key = self._trust.key_for(self.participant, self.key_id, self._clock())
        if key.raw != bytes(self._signing_key.verify_key):
            raise KeyNotValidError(
                f"the private key does not match key {self.key_id} of {self.participant} "
                "in the trust store",
                KeyProblem.UNKNOWN_KEY,
            )

    async def _start_producer(self) -> None:
        producer = self._clients.producer(
            **self.settings.client_kwargs(),
            **producer_size_kwargs(),
            transactional_id=gateway_transactional_id(self.participant),
            acks="all",
            enable_idempotence=True,
            **self._producer_options,
        )
        try:
            await producer.start()
        except AioKafkaError as exc:
            await producer.stop()
            raise KafkaError(f"gateway of {self.participant} cannot reach Kafka: {exc}") from exc
        self._producer = producer

    async def _read_history(self) -> dict[str, AlertHistory]:
        """Every alert's last version: from the outbox state (which keeps each alert in force
        for as long as it lasts), then from the outbox (its last weeks, newer if anything)."""
        consumer = self._clients.consumer(
            **self.settings.client_kwargs(),
            **consumer_size_kwargs(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        history: dict[str, AlertHistory] = {}
        try:
            await consumer.start()
            state = outbox_state_topic(self.participant)
            if await fresh_partitions(consumer, state, wait=0.0):
                await self._read_topic(consumer, state, history)
                self._state_topic = state
            else:
                log.warning("gateway.no_outbox_state", topic=state, hint="run provision")
            if not await self._read_topic(consumer, self.topic, history):
                raise KafkaError(f"outbox {self.topic} does not exist or is not readable")
        except AioKafkaError as exc:
            raise KafkaError(f"cannot read the history of outbox {self.topic}: {exc}") from exc
        finally:
            await consumer.stop()
        return history

    async def _read_topic(
        self, consumer: Consumer, topic: str, history: dict[str, AlertHistory]
    ) -> bool:
        """Add ``topic``'s records to ``history``; False when the topic does not exist."""
        partitions = await fresh_partitions(consumer, topic)
        if not partitions:
            return False
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    if record.value is None and record.key is not None:
                        # A tombstone: the alert's state was erased after its grace period.
                        history.pop(record.key.decode("utf-8", "replace"), None)
                    self._remember(history, record.value, record.offset)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return True

    @staticmethod
    def _remember(history: dict[str, AlertHistory], value: bytes | None, offset: int) -> None:
        if value is None:
            return
        try:
            header = decode_envelope(value).header
        except DecodeError as exc:
            log.warning("gateway.history.undecodable", offset=offset, error=str(exc))
            return
        known = history.get(header.alert_id)
        if known is None or header.version > known.version:
            history[header.alert_id] = AlertHistory(header)

    # -- preparing ---------------------------------------------------------------------

    def load_history(self, values: Iterable[bytes | None]) -> None:
        """Add outbox record values (oldest first) to what this gateway knows it published."""
        for offset, value in enumerate(values):
            self._remember(self._history, value, offset)

    def history(self, alert_id: str) -> AlertHistory | None:
        """What this gateway last published for ``alert_id``, or None."""
        return self._history.get(alert_id)

    def _seal(self, alert: AlertInput, history: dict[str, AlertHistory], now: datetime) -> Envelope:
        """Seal ``alert`` as its next message, updating the working ``history``."""
        if alert.origin != self.participant:
            raise ValidationError(
                "invalid alert",
                (f"origin: must be {self.participant}, the participant of this gateway",),
            )
        if alert.operation is Operation.CANCEL:
            assert alert.alert_id is not None  # the input model requires it for a CANCEL
            envelope = self._cancel_envelope(
                alert.alert_id, alert.cancel_reason or "", history, now
            )
            history[alert.alert_id] = AlertHistory(envelope.header)
            return envelope
        known = history.get(alert.alert_id) if alert.alert_id is not None else None
        if known is None:
            if alert.operation is Operation.UPDATE:
                raise ValidationError(
                    "invalid alert",
                    (f"alert_id: {alert.alert_id} was never published by {self.participant}",),
                )
            version, operation = 1, Operation.CREATE
        else:
            self._check_open(alert.alert_id or "", known)
            if known.header.alert_type is not alert.alert_type:
                raise ValidationError(
                    "invalid alert",
                    (f"alert_type: alert {alert.alert_id} is a {known.header.alert_type}",),
                )
            version, operation = known.version + 1, Operation.UPDATE
            if alert.operation is Operation.UPDATE and alert.version not in (1, version):
                raise ValidationError(
                    "invalid alert",
                    (f"version: the next version of {alert.alert_id} is {version}",),
                )
        message = alert.model_copy(update={"version": version, "operation": operation})
        alert_id = alert.alert_id or uuid.uuid4().hex
        try:
            envelope = seal(
                message,
                signing_key=self._signing_key,
                key_id=self.key_id,
                message_id=uuid.uuid4().hex,
                issued_at=now,
                alert_id=alert_id,
                recipients=self._recipients_of(message, alert_id, now),
            )
        except BorderExchangeError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError("invalid alert", (f"(alert): {exc}",)) from exc
        problem = limits.alert_size_problem(len(encode_envelope(envelope)))
        if problem is not None:
            raise ValidationError("invalid alert", (f"(alert): {problem}",))
        history[envelope.header.alert_id] = AlertHistory(envelope.header)
        return envelope

    def _recipients_of(
        self, alert: AlertInput, alert_id: str, now: datetime
    ) -> Mapping[str, tuple[Recipient, ...]] | None:
        """Who may read each section of ``alert``, or None when sections go in clear."""
        self._follow_trust()
        if self.recipients is None:
            return None
        policy_input = PolicyInput(
            alert.origin, alert.alert_type, alert.handling_code, alert.operation, alert_id,
            alert.action_on_hit,
        )  # fmt: skip
        plan = self.recipients.plan(policy_input, now)
        for participant, why in plan.unreachable:
            log.warning(
                "gateway.recipient_without_key", alert_id=alert_id, recipient=participant,
                detail=why,
            )  # fmt: skip
        return plan.sections

    def _follow_trust(self) -> None:
        """Take the trust store reloaded since the last sealing, if any."""
        trust = None if self._trust_updates is None else self._trust_updates()
        if trust is None:
            return
        self._trust = trust
        if self.recipients is not None:
            self.recipients = self.recipients.with_trust(trust)
        log.info("gateway.trust_reloaded", participant=self.participant)

    def _check_open(self, alert_id: str, known: AlertHistory) -> None:
        if known.cancelled:
            raise ValidationError(
                "invalid alert",
                (f"alert_id: alert {alert_id} was cancelled at version {known.version}",),
            )

    def _cancel_envelope(
        self, alert_id: str, reason: str, history: dict[str, AlertHistory], now: datetime
    ) -> Envelope:
        known = history.get(alert_id)
        if known is None:
            raise ValidationError(
                "invalid cancel",
                (f"alert_id: {alert_id} was never published by {self.participant}",),
            )
        self._check_open(alert_id, known)
        if not reason.strip():
            raise ValidationError("invalid cancel", ("cancel_reason: must not be empty",))
        header = replace(
            known.header,
            version=known.version + 1,
            message_id=uuid.uuid4().hex,
            operation=Operation.CANCEL,
            issued_at=now,
            cancel_reason=reason,
            key_id=self.key_id,
            schema_fingerprint=envelope_fingerprint(),
        )
        return sign(header, (), self._signing_key)

    def check(self, alerts: Iterable[AlertInput]) -> list[tuple[str, ...]]:
        """The problems of each alert if published as one batch in this order (empty: fine)."""
        working = dict(self._history)
        now = self._clock()
        problems: list[tuple[str, ...]] = []
        for alert in alerts:
            try:
                self._seal(alert, working, now)
            except ValidationError as exc:
                problems.append(exc.problems or (str(exc),))
            else:
                problems.append(())
        return problems

    # -- publishing --------------------------------------------------------------------

    async def publish(self, alert: AlertInput) -> Receipt:
        """Seal and publish one alert (a create, or an update when its id is known)."""
        return (await self.publish_batch([alert]))[0]

    async def cancel(self, alert_id: str, reason: str) -> Receipt:
        """Publish the cancellation of alert ``alert_id`` with ``reason``."""
        outcome = (await self.publish_each([Cancellation(alert_id, reason)]))[0]
        if isinstance(outcome, ValidationError):
            raise outcome
        return outcome

    async def publish_each(
        self, requests: Sequence[AlertInput | Cancellation]
    ) -> list[Receipt | ValidationError]:
        """Seal each request on its own and publish the valid ones in one transaction.

        An invalid request gets its ``ValidationError`` in its place and the others go
        on (a later request sees the earlier valid ones, as in a batch); a transaction
        that fails raises ``KafkaError`` and publishes none of them.
        """
        async with self._lock:
            working = dict(self._history)
            now = self._clock()
            outcomes: list[Envelope | ValidationError] = []
            for request in requests:
                try:
                    if isinstance(request, Cancellation):
                        envelope = self._cancel_envelope(
                            request.alert_id, request.reason, working, now
                        )
                        working[request.alert_id] = AlertHistory(envelope.header)
                    else:
                        envelope = self._seal(request, working, now)
                except ValidationError as exc:
                    outcomes.append(exc)
                else:
                    outcomes.append(envelope)
            envelopes = [o for o in outcomes if isinstance(o, Envelope)]
            receipts = iter(await self._send(envelopes, working) if envelopes else [])
            return [o if isinstance(o, ValidationError) else next(receipts) for o in outcomes]

    async def publish_batch(self, alerts: Sequence[AlertInput]) -> list[Receipt]:
        """Seal every alert and publish them in one transaction; nothing if one is invalid."""
        async with self._lock:
            working = dict(self._history)
            now = self._clock()
            envelopes: list[Envelope] = []
            problems: list[str] = []
            for index, alert in enumerate(alerts):
                try:
                    envelopes.append(self._seal(alert, working, now))
                except ValidationError as exc:
                    prefix = f"[{index}] " if len(alerts) > 1 else ""
                    problems.extend(prefix + p for p in (exc.problems or (str(exc),)))
            if problems:
                raise ValidationError("nothing published", tuple(problems))
            if not envelopes:
                return []
            return await self._send(envelopes, working)

    async def _send(
        self, envelopes: Sequence[Envelope], working: dict[str, AlertHistory]
    ) -> list[Receipt]:
        """Publish in one transaction, retrying the whole transaction until ``retry_for``.

        A failed attempt is aborted (or fenced by the next producer with the same
        transactional id), so ``read_committed`` readers see each message once.
        """
        values = [(e.header, encode_envelope(e)) for e in envelopes]
        deadline = time.monotonic() + self._retry_for
        delay = 0.5
        sent: list[Receipt] = []
        """Where the records of an attempt whose commit was sent landed (else empty)."""
        while True:
            try:
                if self._producer is None:
                    await self._start_producer()
                # an attempt may wait for a coordinator that never answers: bounded too
                async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                    if sent and await self._committed(sent):
                        receipts = sent
                    else:
                        sent = []
                        receipts = await self._transaction(values, sent)
            except (AioKafkaError, KafkaError, TimeoutError, OSError) as exc:
                # the next attempt, or the next publish, starts on a fresh producer
                await self._drop_producer()
                if time.monotonic() + delay > deadline:
                    if sent:
                        raise CommitUnknownError(
                            f"publishing to {self.topic}: the commit was sent but its "
                            f"outcome is not known, the records may be published: {exc}"
                        ) from exc
                    raise KafkaError(
                        f"publishing to {self.topic} failed, nothing was published: {exc}"
                    ) from exc
                log.warning("gateway.retry", topic=self.topic, error=repr(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._history = working
            return receipts

    async def _committed(self, sent: Sequence[Receipt]) -> bool:
        """Whether the records of an attempt whose commit answer was lost are committed.

        The producer just started under the same transactional id has settled that
        transaction (completed a commit the coordinator had recorded, or aborted it);
        once the partitions' last stable offsets pass the records, a ``read_committed``
        read at their offsets returns them if they were committed and skips them if not.
        """
        consumer = self._clients.consumer(
            **self.settings.client_kwargs(),
            **consumer_size_kwargs(),
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            wanted = {(r.partition, r.offset): r.message_id for r in sent}
            tps = sorted({TopicPartition(self.topic, p) for p, _ in wanted})
            consumer.assign(tps)
            while True:  # bounded by the attempt's timeout
                stable = await consumer.end_offsets(tps)
                if all(stable[TopicPartition(self.topic, p)] > o for p, o in wanted):
                    break
                await asyncio.sleep(0.2)
            seen: set[tuple[int, int]] = set()
            for tp in tps:
                first = min(o for p, o in wanted if p == tp.partition)
                last = max(o for p, o in wanted if p == tp.partition)
                consumer.seek(tp, first)
                while await consumer.position(tp) <= last:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    seen.update((r.partition, r.offset) for r in batch.get(tp, []))
        finally:
            await consumer.stop()
        committed = set(wanted) <= seen
        log.warning("gateway.commit_outcome", committed=committed, records=len(sent))
        return committed

    async def _transaction(
        self, values: Sequence[tuple[Header, bytes]], sent: list[Receipt]
    ) -> list[Receipt]:
        """One attempt; ``sent`` gets the receipts once the commit is sent (its answer may
        be lost)."""
        producer = self._producer
        if producer is None:
            raise KafkaError("the gateway is not started (use it as an async context manager)")
        await producer.begin_transaction()
        try:
            futures = [
                await producer.send(self.topic, value, key=header.alert_id.encode("utf-8"))
                for header, value in values
            ]
            if self._state_topic is not None:
                # The outbox state, in the same transaction: the last version of each alert.
                futures += [
                    await producer.send(self._state_topic, v, key=h.alert_id.encode("utf-8"))
                    for h, v in values
                ]
            metadata = (await asyncio.gather(*futures))[: len(values)]
        except BaseException:
            try:
                await asyncio.wait_for(producer.abort_transaction(), ABORT_TIMEOUT)
            except Exception as abort:  # the producer is reset by the caller
                log.warning("gateway.abort_failed", error=repr(abort))
            raise
        receipts = [
            Receipt(
                header.message_id,
                header.alert_id,
                header.version,
                meta.partition,
                meta.offset,
                header.operation,
            )
            for (header, _), meta in zip(values, metadata, strict=True)
        ]
        sent.extend(receipts)
        await producer.commit_transaction()
        return receipts

    async def _drop_producer(self) -> None:
        """Discard the producer: nothing it holds reaches the broker later, and the next
        one, with the same transactional id, fences its transaction."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await discard(producer, ABORT_TIMEOUT)
