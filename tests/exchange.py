"""Test support: a sandbox exchange on the session cluster, isolated by random participant ids."""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from nacl.signing import SigningKey

from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.demo.sandbox import Sandbox, make_sandbox
from border_exchange.domain import naming
from border_exchange.domain.alerts import AlertInput
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_envelope, decode_record, encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal
from border_exchange.domain.trust import PublicKey
from border_exchange.services.router import PolicyView, Router, RouterTuning
from tests.conftest import KafkaCluster

PARTITIONS = 3


_HANDED_OUT: set[str] = {
    "CAF", "COD", "SSD", "UGA", "TCD", "CMR", "SDN", "COG", "KEN", "TLA", "TLB", "TLC", "SSL"
}  # fmt: skip
"""Ids given to tests in this process, and the fixed ids tests use as they are."""


def random_ids(count: int, prefix: str = "") -> list[str]:
    """``count`` three-letter participant ids starting with ``prefix``, new to this process.

    The tests share one cluster, so two tests drawing the same id would share topics
    (and one would see the other's records): no id is handed out twice.
    """
    ids: set[str] = set()
    while len(ids) < count:
        candidate = prefix + "".join(random.choices(string.ascii_uppercase, k=3 - len(prefix)))
        if candidate not in _HANDED_OUT:
            _HANDED_OUT.add(candidate)
            ids.add(candidate)
    return sorted(ids)


def exchange_topics(
    ids: Sequence[str],
    log_configs: Mapping[str, str] | None = None,
    state_configs: Mapping[str, str] | None = None,
    min_isr: int = 1,
) -> list[tuple[str, int, dict[str, str]]]:
    """The topics of an exchange of ``ids``: name, partitions and configs of each."""
    isr = {"min.insync.replicas": str(min_isr)}
    compact = dict(state_configs or {"cleanup.policy": "compact"}) | isr
    logs = dict(log_configs or {}) | isr
    names: list[tuple[str, int, dict[str, str]]] = [
        (naming.QUARANTINE_TOPIC, 3, isr),
        (naming.AGREEMENTS_TOPIC, 1, isr),
    ]
    for p in ids:
        names += [
            (naming.outbox_topic(p), PARTITIONS, logs),
            (naming.outbox_state_topic(p), PARTITIONS, compact),
            (naming.audit_topic(p), PARTITIONS, isr),
            (naming.hits_topic(p), PARTITIONS, logs),
            (naming.notices_topic(p), PARTITIONS, logs),
        ]
        for q in ids:
            if q != p:
                names.append((naming.feed_topic(p, q), PARTITIONS, logs))
                names.append((naming.feed_state_topic(p, q), PARTITIONS, compact))
    return names


async def create_topics(
    settings: KafkaSettings,
    ids: Sequence[str],
    log_configs: Mapping[str, str] | None = None,
    state_configs: Mapping[str, str] | None = None,
    *,
    replication: int = 1,
    min_isr: int = 1,
) -> None:
    """Outboxes, feeds, their states and audit trails of ``ids``, and the hub's shared topics.

    Each has ``replication`` copies and ``min_isr`` in-sync replicas.
    """
    names = exchange_topics(ids, log_configs, state_configs, min_isr)
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        for name, partitions, configs in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name, partitions, replication, topic_configs=configs)]
                )
    finally:
        await admin.close()


@dataclass
class Exchange:
    """A sandbox whose topics exist on the cluster, with a router that can be started."""

    kafka: KafkaCluster
    sandbox: Sandbox
    ids: list[str]
    group: str = field(default_factory=lambda: f"{naming.ROUTER_GROUP}.test.{uuid.uuid4().hex[:8]}")

    @property
    def settings(self) -> KafkaSettings:
        """The administrator's settings (the tests play every role)."""
        return self.kafka.admin

    def tuning(self, **overrides: object) -> RouterTuning:
        """Router settings confined to this exchange's outboxes and its own group."""
        pattern = r"^bx\.(?:" + "|".join(self.ids) + r")\.outbox$"
        values: dict[str, object] = {
            "group_id": self.group,
            "outbox_pattern": pattern,
            "topic_refresh": 1.0,
            "checkpoint_interval": 1.0,
        }
        values.update(overrides)
        return RouterTuning(**values)  # type: ignore[arg-type]

    def router(self, **overrides: object) -> Router:
        """A router for this exchange (not started), under its governed trust store (the one
        ``sandbox.write`` writes)."""
        view = PolicyView.build(
            self.sandbox.trust, self.sandbox.agreements, self.sandbox.governance()
        )
        return Router(
            self.settings,
            view,
            self.sandbox.hub_key,
            self.sandbox.key_ids["hub"],
            tuning=self.tuning(**overrides),
        )

    def seal(
        self,
        alert: AlertInput,
        *,
        issued_at: datetime | None = None,
        key: SigningKey | None = None,
        key_id: str | None = None,
    ) -> Envelope:
        """``alert`` signed by its origin's sandbox key."""
        origin = alert.origin
        return seal(
            alert,
            signing_key=key or self.sandbox.keys[origin],
            key_id=key_id or self.sandbox.key_ids[origin],
            message_id=uuid.uuid4().hex,
            issued_at=issued_at or datetime.now(UTC),
        )

    def alert(self, alert_type: AlertType, origin: str, **changes: object) -> AlertInput:
        """A sample alert from ``origin`` expiring in a year, with ``changes`` applied."""
        base = sample_alert(alert_type, origin=origin, alert_id=uuid.uuid4().hex)
        values: dict[str, object] = {"expires_at": datetime.now(UTC) + timedelta(days=365)}
        values.update(changes)
        return type(base).model_validate({**base.model_dump(), **values})

    async def publish(
        self, *envelopes: Envelope, raw: Sequence[tuple[str, bytes | None, bytes]] = ()
    ) -> None:
        """Write envelopes to their origin's outbox (key = alert id), and ``raw`` records."""
        producer = AIOKafkaProducer(**self.settings.client_kwargs(), acks="all")
        await producer.start()
        try:
            for envelope in envelopes:
                header = envelope.header
                await producer.send_and_wait(
                    naming.outbox_topic(header.origin),
                    encode_envelope(envelope),
                    key=header.alert_id.encode(),
                )
            for topic, key, value in raw:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    async def read(self, topic: str, expect: int | None = None, wait: float = 30.0) -> list[bytes]:
        """Every committed value of ``topic``; waits until ``expect`` values are there."""
        consumer = AIOKafkaConsumer(
            topic,
            **self.settings.client_kwargs(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:
            values: list[bytes] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while True:
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    values.extend(r.value for r in records if r.value is not None)
                tps = list(consumer.assignment())
                if expect is None and tps:
                    ends = await consumer.end_offsets(tps)
                    positions = [await consumer.position(tp) for tp in tps]
                    if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                        return values
                elif expect is not None and (len(values) >= expect or loop.time() > deadline):
                    return values
        finally:
            await consumer.stop()

    async def feed(
        self, recipient: str, origin: str, expect: int | None = None, wait: float = 30.0
    ) -> list[Envelope]:
        """The envelopes in ``recipient``'s feed of ``origin``'s alerts (see ``read``)."""
        values = await self.read(naming.feed_topic(recipient, origin), expect, wait)
        return [decode_envelope(v) for v in values]


async def make_exchange(
    kafka: KafkaCluster,
    count: int,
    agreements: str | None = None,
    *,
    replication: int = 1,
    min_isr: int = 1,
    posts: Sequence[str] = (),
    **kwargs: object,
) -> Exchange:
    """An exchange of ``count`` fresh participants; ``agreements`` may use P0, P1, ... for ids.

    Its topics have ``replication`` copies and ``min_isr`` in-sync replicas; each
    participant has the border ``posts`` named, each with its own key.
    """
    ids = random_ids(count)
    text = agreements or ""
    for i, pid in enumerate(ids):
        text = text.replace(f"P{i}", pid)
    if posts:
        kwargs["posts"] = {pid: tuple(posts) for pid in ids}
    sandbox = make_sandbox(ids, text, **kwargs)  # type: ignore[arg-type]
    await create_topics(kafka.admin, ids, replication=replication, min_isr=min_isr)
    return Exchange(kafka, sandbox, ids)


async def every_copy_once(ex: Exchange, sent: Iterable[tuple[str, str]], unknown: int = 0) -> None:
    """Every partner's feed holds each sent ``(origin, message id)`` exactly once.

    Counted as a multiset, so a duplicate shows. Besides, a feed may hold up to
    ``unknown`` other messages once each (those of batches whose publication failed
    though their commit may have happened); nothing of the outboxes is quarantined.
    """
    expected: dict[tuple[str, str], Counter[str]] = {
        (recipient, origin): Counter()
        for origin in ex.ids
        for recipient in ex.ids
        if recipient != origin
    }
    for origin, message_id in sent:
        for recipient in ex.ids:
            if recipient != origin:
                expected[recipient, origin][message_id] += 1
    for (recipient, origin), want in expected.items():
        got = Counter(e.header.message_id for e in await ex.feed(recipient, origin))
        extra, missing = got - want, want - got
        assert not missing, f"{recipient} from {origin}: {sum(missing.values())} missing"
        doubled = {m: n for m, n in got.items() if n > 1}
        assert not doubled, f"{recipient} from {origin}: doubled {doubled}"
        assert len(extra) <= unknown, f"{recipient} from {origin}: {len(extra)} never sent"
    quarantined = [
        record
        for _, record in map(decode_record, await ex.read(naming.QUARANTINE_TOPIC))
        if naming.parse_outbox_topic(record["source_topic"]) in ex.ids
    ]
    assert quarantined == []


class Service(Protocol):
    """What runs until told to stop: a router, a border post."""

    async def run(self, stop: asyncio.Event) -> None: ...


RunningService = TypeVar("RunningService", bound=Service)


@contextlib.asynccontextmanager
async def running(service: RunningService, within: float = 60.0) -> AsyncIterator[RunningService]:
    """Run ``service`` in the background for the duration of the block, then stop it
    cleanly: it must have stopped ``within`` seconds after the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, within)


def with_extra_key(
    ex: Exchange, participant: str, key_id: str, *, revoked_at: datetime | None = None
) -> SigningKey:
    """Give ``participant`` another key in the exchange's trust store; return its private half."""
    key = SigningKey.generate()
    member = ex.sandbox.trust.participants[participant]
    public = PublicKey(
        participant,
        key_id,
        bytes(key.verify_key),
        member.keys[0].valid_from,  # as long as the participant's first key
        member.keys[0].valid_until,
        revoked_at=revoked_at,
        revocation_reason="key file lost" if revoked_at else None,
    )
    members = dict(ex.sandbox.trust.participants)
    members[participant] = replace(member, keys=(*member.keys, public))
    trust = replace(ex.sandbox.trust, participants=MappingProxyType(members))
    ex.sandbox = replace(ex.sandbox, trust=trust)
    return key
