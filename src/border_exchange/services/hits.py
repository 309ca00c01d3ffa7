"""The hit procedure over Kafka: a post reports and reads acknowledgements; a desk reads
hit reports with their deadlines, acknowledges them, and reads its quarantine notices.

Reports and acknowledgements are written to the sender's own outbox (key: the alert id)
and routed by the router to ``bx.<P>.hits`` of their one recipient; notices arrive in
``bx.<P>.notices``. Everything read is checked end to end: a report by its post's key, an
acknowledgement by a key of the alert's origin, both with the trust store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final, TypeVar

import structlog
from aiokafka.errors import KafkaError as AioKafkaError
from nacl.signing import SigningKey

from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.adapters.kafka_clients import AIOKAFKA, KafkaClients, TopicPartition
from border_exchange.adapters.kafka_settings import (
    KafkaSettings,
    consumer_size_kwargs,
    producer_size_kwargs,
)
from border_exchange.adapters.metrics import Metrics
from border_exchange.adapters.post_store import PostStore
from border_exchange.domain.hit_deadlines import DeadlineTable, HitStatus, hit_status
from border_exchange.domain.hits import (
    HitAcknowledgement,
    HitAction,
    HitReport,
    MessageKind,
    ack_of,
    decode_ack,
    message_kind,
    report_on,
    seal_ack,
    seal_report,
    verify_ack,
    verify_report,
)
from border_exchange.domain.naming import hits_topic, notices_topic, outbox_topic
from border_exchange.domain.quarantine_notice import QuarantineNotice, decode_notice
from border_exchange.domain.times import aware_time
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import (
    BorderExchangeError,
    ConfigError,
    DecodeError,
    KafkaError,
    KeyNotValidError,
    SignatureError,
    ValidationError,
)

log = structlog.get_logger(__name__)

SEND_TIMEOUT_SECONDS: Final = 20.0
"""How long a post tries to reach the broker before it leaves its reports queued."""
SEND_EVERY_SECONDS: Final = 30.0
"""How often ``post run`` tries to send the post's queued hit reports (``--send-hits-every``)."""

Clock = Callable[[], datetime]
_M = TypeVar("_M", HitReport, HitAcknowledgement)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------ reading


async def read_topic(
    settings: KafkaSettings, topic: str, clients: KafkaClients = AIOKAFKA
) -> list[bytes]:
    """Every committed value of ``topic``, from its start to its end as of now."""
    consumer = clients.consumer(
        **settings.client_kwargs(),
        **consumer_size_kwargs(),
        isolation_level="read_committed",
        enable_auto_commit=False,
        group_id=None,
    )
    try:
        await consumer.start()
        # As the auditor reads it: the consumer's own ``topics()`` keeps the partitions to
        # itself, and a topic not subscribed to is not in its metadata.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            raise KafkaError(f"topic {topic} does not exist or may not be read (provision it)")
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        values: list[bytes] = []
        for tp in tps:
            idle = 0
            while await consumer.position(tp) < ends[tp] and idle < 10:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                got = batch.get(tp, [])
                idle = 0 if got else idle + 1
                values.extend(r.value for r in got if r.value is not None and r.offset < ends[tp])
        return values
    except AioKafkaError as exc:
        raise KafkaError(f"cannot read {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()


async def _verified(
    settings: KafkaSettings,
    topic: str,
    kind: MessageKind,
    verify: Callable[[bytes, TrustStore], _M],
    trust: TrustStore,
    clients: KafkaClients,
) -> list[_M]:
    """Every message of ``kind`` in ``topic`` whose signature verifies; the rest logged."""
    found = []
    for value in await read_topic(settings, topic, clients):
        if message_kind(value) is not kind:
            continue
        try:
            found.append(verify(value, trust))
        except (DecodeError, SignatureError, KeyNotValidError) as exc:
            log.warning("hits.refused", topic=topic, kind=kind.value, error=str(exc))
    return found


# ------------------------------------------------------------------------ the post


def prepare_report(
    store: PostStore,
    *,
    reporter: str,
    post: str,
    key: SigningKey,
    key_id: str,
    alert_id: str,
    version: int | None,
    hit_at: datetime,
    action: HitAction,
    place: str,
    contact: str,
    remarks: str | None = None,
    not_acted_reason: str | None = None,
    origin: str | None = None,
    now: datetime | None = None,
) -> tuple[HitReport, bytes]:
    """A signed report on an alert the post holds; ``ValidationError`` naming what is wrong.

    The alert must be in force in the post's store (from ``origin`` when given), the
    version one the post received (default: the one it holds), the time not ahead of
    the post's clock; every field within its limit.
    """
    now = now or _now()
    held = store.find_alert(alert_id, origin)
    if held is None:
        raise ValidationError(
            "invalid hit report",
            (f"alert: {alert_id!r} is not an alert in force at this post",),
        )
    if version is not None and not 1 <= version <= held.version:
        raise ValidationError(
            "invalid hit report",
            (
                f"version: {version} of alert {alert_id} was never received here "
                f"(the post holds version {held.version})",
            ),
        )
    report = report_on(
        held,
        reporter=reporter,
        post=post,
        key_id=key_id,
        hit_at=hit_at,
        action=action,
        place=place,
        contact=contact,
        now=now,
        remarks=remarks,
        not_acted_reason=not_acted_reason,
    )
    if version is not None:
        report = replace(report, alert_version=version)
    return report, seal_report(report, key, now)


ACTIONS: Final = ", ".join(action.value for action in HitAction)
"""What an officer may say was done, as the CLI and the web page name it."""


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who signs a post's hit reports: its service, its name, the post's key and key id."""

    participant: str
    post: str
    key: SigningKey = field(repr=False)
    key_id: str


@dataclass(frozen=True, slots=True)
class HitEntry:
    """A hit as an officer enters it, as text (``post report-hit``'s options, the web form).

    Empty optional fields count as not given: no version (the one held), no time (now).
    """

    alert_id: str
    action: str
    place: str
    contact: str
    origin: str | None = None
    version: str | None = None
    at: str | None = None
    remarks: str | None = None
    reason: str | None = None


def _entered(entry: HitEntry, now: datetime) -> tuple[HitAction, datetime, int | None]:
    problems = []
    action: HitAction | None = None
    try:
        action = HitAction(entry.action.strip().upper())
    except ValueError:
        problems.append(f"action: {entry.action!r} is not one of {ACTIONS}")
    hit_at = now
    if entry.at and entry.at.strip():
        try:
            hit_at = aware_time(entry.at.strip(), "at").astimezone(UTC)
        except BorderExchangeError as exc:
            problems.append(str(exc))
    version = None
    if entry.version and entry.version.strip():
        try:
            version = int(entry.version.strip())
        except ValueError:
            problems.append(f"version: {entry.version!r} is not a whole number")
    if problems or action is None:
        raise ValidationError("invalid hit report", tuple(problems))
    return action, hit_at, version


def report_entered(
    store: PostStore, reporter: Reporter, entry: HitEntry, now: datetime | None = None
) -> tuple[HitReport, bytes]:
    """The signed report of what an officer entered; ``ValidationError`` naming every
    problem, before anything is signed. The one check of ``post report-hit`` and of the
    web page's hit form."""
    now = now or _now()
    action, hit_at, version = _entered(entry, now)
    return prepare_report(
        store,
        reporter=reporter.participant,
        post=reporter.post,
        key=reporter.key,
        key_id=reporter.key_id,
        alert_id=entry.alert_id.strip(),
        version=version,
        hit_at=hit_at,
        action=action,
        place=entry.place.strip(),
        contact=entry.contact.strip(),
        remarks=(entry.remarks or "").strip() or None,
        not_acted_reason=(entry.reason or "").strip() or None,
        origin=(entry.origin or "").strip() or None,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one attempt to send the queue did."""

    sent: int
    left: int
    error: str | None = None


async def send_queued(
    settings: KafkaSettings,
    queue: HitQueue,
    participant: str,
    *,
    wait: float = SEND_TIMEOUT_SECONDS,
    clock: Clock = _now,
    clients: KafkaClients = AIOKAFKA,
) -> SendResult:
    """Send every queued report to the service's outbox, marking each sent once the broker
    acknowledged it; with the link down, everything stays queued for the next attempt."""
    pending = queue.queued()
    if not pending:
        return SendResult(0, 0)
    producer = clients.producer(
        **settings.client_kwargs(),
        **producer_size_kwargs(),
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=int(wait * 1000),
    )
    sent = 0
    try:
        await asyncio.wait_for(producer.start(), wait)
        for hit_id, alert_id, value in pending:
            await asyncio.wait_for(
                producer.send_and_wait(outbox_topic(participant), value, key=alert_id.encode()),
                wait,
            )
            queue.mark_sent(hit_id, clock())
            sent += 1
            log.info("post.hit_sent", hit_id=hit_id, alert_id=alert_id)
    except (AioKafkaError, TimeoutError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        log.warning("post.hits_queued", left=len(pending) - sent, error=error)
        return SendResult(sent, len(pending) - sent, error)
    finally:
        with contextlib.suppress(AioKafkaError, TimeoutError, OSError):
            await asyncio.wait_for(producer.stop(), wait)
    return SendResult(sent, 0)


async def keep_sending(
    settings: KafkaSettings,
    queue: HitQueue,
    participant: str,
    stop: asyncio.Event,
    *,
    every: float = SEND_EVERY_SECONDS,
    send: Callable[[KafkaSettings, HitQueue, str], Awaitable[SendResult]] = send_queued,
    collect: Callable[[], Awaitable[int]] | None = None,
) -> None:
    """Until ``stop`` is set, try to send the queue every ``every`` seconds (``post run``),
    and fetch the answers to the reports sent (``collect``, e.g. :func:`collect_awaited`).

    Each attempt is one :func:`send_queued` (``send``): a report is marked sent only once
    the broker acknowledged it, so one left queued by a failed attempt goes with the next,
    and one sent twice (a crash before the mark, or ``post send-hits`` at the same moment)
    has the same id and is refused by the router as ``REPLAYED``: delivered once. A fetch
    of acknowledgements that fails (the link down) is tried again the next time.
    """
    if every <= 0:
        raise ConfigError(f"sending hits every {every:g} s: must be a positive number of seconds")
    while not stop.is_set():
        result = await send(settings, queue, participant)
        if result.sent or result.left:
            log.info("post.hits_tried", sent=result.sent, left=result.left, error=result.error)
        if collect is not None:
            try:
                new = await asyncio.wait_for(collect(), SEND_TIMEOUT_SECONDS)
            except (KafkaError, TimeoutError) as exc:
                log.warning("post.acks_not_fetched", error=str(exc) or type(exc).__name__)
            else:
                if new:
                    log.info("post.acks_received", new=new)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def awaiting_answer(queue: HitQueue) -> bool:
    """Whether a report of the post was sent and its acknowledgement has not come back."""
    return any(hit.state is SendState.SENT and hit.ack_id is None for hit in queue.reports())


async def collect_awaited(
    settings: KafkaSettings, queue: HitQueue, participant: str, post: str, trust: TrustStore
) -> int:
    """:func:`collect_acks`, only while a sent report awaits its answer (none read else)."""
    if not awaiting_answer(queue):
        return 0
    return await collect_acks(settings, queue, participant, post, trust)


async def collect_acks(
    settings: KafkaSettings,
    queue: HitQueue,
    participant: str,
    post: str,
    trust: TrustStore,
    clients: KafkaClients = AIOKAFKA,
) -> int:
    """Keep every verified acknowledgement of this post's reports; how many were new."""
    known = {hit.hit_id: hit for hit in queue.reports()}
    new = 0
    topic = hits_topic(participant)
    for ack in await _verified(settings, topic, MessageKind.HIT_ACK, verify_ack, trust, clients):
        hit = known.get(ack.hit_id)
        if ack.reporter != participant or ack.post != post or hit is None:
            continue
        if hit.ack_id != ack.ack_id and queue.acknowledge(ack):
            new += 1
    return new


# ------------------------------------------------------------------------ the desk


@dataclass(frozen=True, slots=True)
class DeskHit:
    """A hit report at the origin's desk, with its deadline and status."""

    report: HitReport
    deadline: datetime
    status: HitStatus
    ack: HitAcknowledgement | None


def desk_view(
    reports: list[HitReport],
    acks: list[HitAcknowledgement],
    table: DeadlineTable,
    now: datetime,
) -> list[DeskHit]:
    """Each report with its deadline and its status at ``now``, most urgent first."""
    answered = {ack.hit_id: ack for ack in sorted(acks, key=lambda a: a.acknowledged_at)}
    seen: set[str] = set()
    rows = []
    for report in reports:
        if report.hit_id in seen:
            continue
        seen.add(report.hit_id)
        deadline = table.deadline(report.alert_type, report.priority, report.reported_at)
        ack = answered.get(report.hit_id)
        status = hit_status(deadline, ack.acknowledged_at if ack else None, now)
        rows.append(DeskHit(report, deadline, status, ack))
    return sorted(rows, key=lambda row: (row.ack is not None, row.deadline))


def open_counts(rows: list[DeskHit]) -> dict[HitStatus, int]:
    """How many hits are open and how many overdue (the desk's gauge)."""
    return {
        HitStatus.OPEN: sum(row.status is HitStatus.OPEN for row in rows),
        HitStatus.OVERDUE: sum(row.status is HitStatus.OVERDUE for row in rows),
    }


def publish_gauge(metrics: Metrics, participant: str, rows: list[DeskHit]) -> None:
    """Set ``desk_hits{participant, status}`` to the open and overdue counts of ``rows``."""
    for status, count in open_counts(rows).items():
        labels = {"participant": participant, "status": status.value.lower()}
        metrics.set("desk_hits", count, labels=labels)


async def desk_hits(
    settings: KafkaSettings,
    participant: str,
    trust: TrustStore,
    table: DeadlineTable,
    now: datetime,
    clients: KafkaClients = AIOKAFKA,
) -> list[DeskHit]:
    """Every verified hit report on ``participant``'s alerts, with the desk's own answers."""
    topic = hits_topic(participant)
    reports = [
        report
        for report in await _verified(
            settings, topic, MessageKind.HIT_REPORT, verify_report, trust, clients
        )
        if report.alert_origin == participant
    ]
    acks = []
    for value in await read_topic(settings, outbox_topic(participant), clients):
        if message_kind(value) is MessageKind.HIT_ACK:
            try:
                acks.append(decode_ack(value))
            except DecodeError:
                continue
    return desk_view(reports, acks, table, now)


async def acknowledge(
    settings: KafkaSettings,
    report: HitReport,
    *,
    key: SigningKey,
    key_id: str,
    instructions: str,
    now: datetime,
    desk_contact: str | None = None,
    clients: KafkaClients = AIOKAFKA,
) -> HitAcknowledgement:
    """Sign and send the acknowledgement of ``report`` from its origin's outbox."""
    ack = ack_of(
        report, key_id=key_id, instructions=instructions, now=now, desk_contact=desk_contact
    )
    value = seal_ack(ack, key)
    producer = clients.producer(
        **settings.client_kwargs(), **producer_size_kwargs(), acks="all", enable_idempotence=True
    )
    try:
        await producer.start()
        await producer.send_and_wait(
            outbox_topic(report.alert_origin), value, key=report.alert_id.encode()
        )
    except AioKafkaError as exc:
        raise KafkaError(f"cannot send the acknowledgement: {exc!r}") from exc
    finally:
        with contextlib.suppress(AioKafkaError, TimeoutError, OSError):
            await producer.stop()
    return ack


async def desk_notices(
    settings: KafkaSettings, participant: str, clients: KafkaClients = AIOKAFKA
) -> list[QuarantineNotice]:
    """Every quarantine notice of ``participant``'s own records, oldest first."""
    notices = []
    for value in await read_topic(settings, notices_topic(participant), clients):
        try:
            notices.append(decode_notice(value))
        except DecodeError:
            continue
    return sorted(notices, key=lambda n: n.quarantined_at)
