"""Kafka's own authorizer keeps participants apart, whatever a client does.

Two participants are provisioned from a trust store on the real broker. Every
forbidden action is refused with an authorization error, every permitted action
works, a suspension takes effect on the next provisioning run (even for a
connection opened before), and a second run changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from border_exchange.adapters.kafka_security import (
    delete_acls,
    delete_scram_user,
    describe_acls,
    list_scram_users,
    upsert_scram_user,
)
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain import naming
from border_exchange.domain.acl import user
from border_exchange.domain.audit import QUARANTINE_SCHEMA
from border_exchange.domain.catalog import ParticipantKind
from border_exchange.domain.encoding import decode_record, encode_record
from border_exchange.domain.trust import Hub, Participant, TrustStore
from border_exchange.services.provisioner import provision, read_secrets
from tests.conftest import KafkaCluster
from tests.exchange import random_ids
from tests.logins import log_in

pytestmark = pytest.mark.kafka

TIMEOUT = 20.0


def _fresh_id(taken: set[str], users: frozenset[str]) -> str:
    while True:
        pid = random_ids(1, prefix="Q")[0]
        if pid not in taken and naming.gateway_principal(pid) not in users:
            taken.add(pid)
            return pid


def _trust(a: str, b: str, auditor: str, b_status: str = "active") -> TrustStore:
    participants = {
        a: Participant(a, a, ParticipantKind.NATIONAL_SERVICE, "active", ("alpha",), ()),
        b: Participant(b, b, ParticipantKind.NATIONAL_SERVICE, b_status, ("beta",), ()),
    }
    return TrustStore(MappingProxyType(participants), Hub((), (auditor,)))


@dataclass(frozen=True)
class World:
    """Two provisioned participants and a login for each principal."""

    kafka: KafkaCluster
    a: str
    b: str
    auditor: str
    secrets: Path
    logins: dict[str, KafkaSettings]

    def login(self, principal: str) -> KafkaSettings:
        return self.logins[principal]


async def _provisioned(kafka: KafkaCluster, tmp: Path) -> World:
    taken: set[str] = set()
    users = await list_scram_users(kafka.admin)
    a, b = _fresh_id(taken, users), _fresh_id(taken, users)
    auditor = f"t{uuid.uuid4().hex[:8]}"
    secrets = tmp / "credentials.yaml"
    await provision(_trust(a, b, auditor), kafka.admin, secrets, scope={a, b})
    passwords = read_secrets(secrets)
    if naming.ROUTER_PRINCIPAL not in passwords:
        # The router existed before this run; give it a password this test knows.
        passwords[naming.ROUTER_PRINCIPAL] = uuid.uuid4().hex
        await upsert_scram_user(
            kafka.admin, naming.ROUTER_PRINCIPAL, passwords[naming.ROUTER_PRINCIPAL]
        )
    logins = {p: kafka.as_user(p, pw) for p, pw in passwords.items()}
    return World(kafka, a, b, auditor, secrets, logins)


@pytest.fixture
async def world(kafka: KafkaCluster, tmp_path: Path) -> AsyncIterator[World]:
    provisioned = await _provisioned(kafka, tmp_path)
    yield provisioned
    # Revoke everything of this test's participants and auditor: the cluster is shared.
    nobody = TrustStore(MappingProxyType({}), Hub())
    scope = {provisioned.a, provisioned.b}
    await provision(nobody, kafka.admin, provisioned.secrets, scope=scope)
    auditor = naming.auditor_principal(provisioned.auditor)
    await delete_acls(kafka.admin, await describe_acls(kafka.admin, user(auditor)))
    await delete_scram_user(kafka.admin, auditor)


# ----------------------------------------------------------------------- actions


async def produce(
    settings: KafkaSettings,
    topic: str,
    transactional_id: str | None = None,
    *,
    idempotent: bool = True,
    value: bytes = b"record",
) -> None:
    """Write one record to ``topic`` (in a transaction when ``transactional_id`` is given)."""
    producer = AIOKafkaProducer(
        **settings.client_kwargs(),
        transactional_id=transactional_id,
        enable_idempotence=idempotent,
        request_timeout_ms=10000,
    )
    async with asyncio.timeout(TIMEOUT):
        try:
            await producer.start()
            if transactional_id is None:
                await producer.send_and_wait(topic, value, key=b"k")
            else:
                async with producer.transaction():
                    await producer.send(topic, value, key=b"k")
        finally:
            await producer.stop()


def _quarantine_record(participant: str) -> bytes:
    return encode_record(
        QUARANTINE_SCHEMA,
        {
            "source_topic": naming.outbox_topic(participant),
            "source_partition": 0,
            "source_offset": 0,
            "reason": "MALFORMED",
            "detail": "written by the ACL test",
            "quarantined_at": datetime.now(UTC),
        },
    )


async def read_values(settings: KafkaSettings, topic: str) -> list[bytes]:
    """Read every partition of ``topic`` from the beginning to its end, without a group."""
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    async with asyncio.timeout(TIMEOUT):
        try:
            await consumer.start()
            # A manually assigned consumer only logs a refused topic and waits; asking for
            # the topic's metadata first surfaces the broker's refusal as an exception.
            partitions = await consumer._client._wait_on_metadata(topic)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            values: list[bytes] = []
            while True:  # fetch at least once: a refused read shows only in a fetch
                batch = await consumer.getmany(*tps, timeout_ms=500)
                values += [record.value for records in batch.values() for record in records]
                if not [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                    return values
        finally:
            await consumer.stop()


async def read(settings: KafkaSettings, topic: str) -> int:
    """How many records ``settings`` reads from ``topic`` (every partition, from the start)."""
    return len(await read_values(settings, topic))


async def read_in_group(settings: KafkaSettings, topic: str, group: str) -> int:
    """Join ``group``, read ``topic`` and commit; records seen."""
    consumer = AIOKafkaConsumer(
        topic,
        **settings.client_kwargs(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    async with asyncio.timeout(TIMEOUT):
        try:
            await consumer.start()
            batch = await consumer.getmany(timeout_ms=5000)
            await consumer.commit()
            return sum(len(records) for records in batch.values())
        finally:
            await consumer.stop()


# --------------------------------------------------------------------- forbidden


async def test_a_post_cannot_read_another_participants_feed(world: World) -> None:
    post = world.login(naming.post_principal(world.a, "alpha"))
    with pytest.raises(TopicAuthorizationFailedError):
        await read(post, naming.feed_topic(world.b, world.a))


async def test_a_gateway_cannot_read_another_participants_feed(world: World) -> None:
    gateway = world.login(naming.gateway_principal(world.a))
    with pytest.raises(TopicAuthorizationFailedError):
        await read(gateway, naming.feed_topic(world.b, world.a))


async def test_a_gateway_cannot_write_another_participants_outbox(world: World) -> None:
    gateway = world.login(naming.gateway_principal(world.a))
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(gateway, naming.outbox_topic(world.b))


async def test_nobody_but_the_router_writes_a_feed(world: World) -> None:
    own_feed = naming.feed_topic(world.a, world.b)
    for principal in (
        naming.gateway_principal(world.a),
        naming.post_principal(world.a, "alpha"),
        naming.gateway_principal(world.b),
        naming.auditor_principal(world.auditor),
    ):
        # Not idempotent: the refusal must come from the topic, not the cluster.
        with pytest.raises(TopicAuthorizationFailedError):
            await produce(world.login(principal), own_feed, idempotent=False)


async def test_state_topics_follow_the_feeds_and_outboxes_rules(world: World) -> None:
    a, b = world.a, world.b
    router = world.login(naming.ROUTER_PRINCIPAL)
    await produce(router, naming.feed_state_topic(b, a), naming.ROUTER_TXN_PREFIX + "0")
    assert (
        await read(world.login(naming.post_principal(b, "beta")), naming.feed_state_topic(b, a))
        >= 1
    )
    gateway = world.login(naming.gateway_principal(a))
    await produce(gateway, naming.outbox_state_topic(a), naming.gateway_transactional_id(a))
    assert await read(gateway, naming.outbox_state_topic(a)) >= 1
    # A post reads only its own service's state; only the router writes feed state.
    with pytest.raises(TopicAuthorizationFailedError):
        await read(world.login(naming.post_principal(a, "alpha")), naming.feed_state_topic(b, a))
    for principal in (naming.gateway_principal(a), naming.post_principal(b, "beta")):
        with pytest.raises(TopicAuthorizationFailedError):
            await produce(world.login(principal), naming.feed_state_topic(b, a), idempotent=False)
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(gateway, naming.outbox_state_topic(b), idempotent=False)


async def test_only_auditors_read_the_audit_trail_and_quarantine(world: World) -> None:
    for principal in (naming.gateway_principal(world.a), naming.post_principal(world.a, "alpha")):
        for topic in (naming.audit_topic(world.a), naming.QUARANTINE_TOPIC):
            with pytest.raises(TopicAuthorizationFailedError):
                await read(world.login(principal), topic)
    # The router writes quarantine but never reads it back.
    with pytest.raises(TopicAuthorizationFailedError):
        await read(world.login(naming.ROUTER_PRINCIPAL), naming.QUARANTINE_TOPIC)


async def test_a_post_cannot_join_another_participants_consumer_group(world: World) -> None:
    post = world.login(naming.post_principal(world.a, "alpha"))
    with pytest.raises(GroupAuthorizationFailedError):
        await read_in_group(
            post, naming.feed_topic(world.a, world.b), naming.post_group(world.b, "beta")
        )


async def test_a_gateway_cannot_use_another_participants_transactional_id(world: World) -> None:
    gateway = world.login(naming.gateway_principal(world.a))
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await produce(
            gateway, naming.outbox_topic(world.a), naming.gateway_transactional_id(world.b)
        )


# --------------------------------------------------------------------- permitted


async def test_each_permitted_action_works(world: World) -> None:
    a, b = world.a, world.b
    gateway = world.login(naming.gateway_principal(a))
    router = world.login(naming.ROUTER_PRINCIPAL)
    post_b = world.login(naming.post_principal(b, "beta"))
    auditor = world.login(naming.auditor_principal(world.auditor))

    await produce(gateway, naming.outbox_topic(a), naming.gateway_transactional_id(a))
    await produce(gateway, naming.outbox_topic(a))
    assert await read(gateway, naming.outbox_topic(a)) >= 1
    assert await read(router, naming.outbox_topic(a)) >= 1
    await produce(router, naming.feed_topic(b, a), naming.ROUTER_TXN_PREFIX + "0")
    await produce(router, naming.audit_topic(a))
    assert await read(router, naming.audit_topic(a)) >= 1  # to rebuild its memory on start
    # The quarantine is shared with every other test: write a well-formed record that
    # names this test's own outbox, which other readers pass over.
    await produce(router, naming.QUARANTINE_TOPIC, value=_quarantine_record(a))
    assert await read_in_group(post_b, naming.feed_topic(b, a), naming.post_group(b, "beta")) >= 1
    # b's gateway reads b's feeds (the copy the router just wrote) ...
    assert b"record" in await read_values(
        world.login(naming.gateway_principal(b)), naming.feed_topic(b, a)
    )
    assert await read(auditor, naming.audit_topic(a)) >= 1
    # ... and the auditor finds the router's quarantine record among everyone's.
    quarantined = [decode_record(v)[1] for v in await read_values(auditor, naming.QUARANTINE_TOPIC)]
    assert naming.outbox_topic(a) in {q["source_topic"] for q in quarantined}
    assert await read(auditor, naming.outbox_topic(a)) >= 1


# -------------------------------------------------------------------- revocation


async def _fetch_until_refused(consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            consumer.seek(tp, 0)
            await consumer.getmany(tp, timeout_ms=500)


async def test_a_suspension_takes_effect_on_the_next_run_even_for_open_connections(
    world: World,
) -> None:
    b = world.b
    post_b = world.login(naming.post_principal(b, "beta"))
    feed = naming.feed_topic(b, world.a)
    consumer = AIOKafkaConsumer(**post_b.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(feed, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        await consumer.getmany(tp, timeout_ms=500)  # authenticated and authorized

        result = await provision(
            _trust(world.a, b, world.auditor, b_status="suspended"),
            world.kafka.admin,
            world.secrets,
            scope={world.a, b},
        )
        assert {u.principal for u in result.plan.delete_users} == {
            naming.gateway_principal(b),
            naming.post_principal(b, "beta"),
        }

        # The connection opened before the run is refused on its next request.
        with pytest.raises(TopicAuthorizationFailedError):
            await _fetch_until_refused(consumer, tp)
    finally:
        await consumer.stop()

    # New connections cannot even log in (the broker says so: not an unreachable broker);
    # a client sees it as a failed bootstrap. The credentials are gone from the file too.
    gateway_b = world.login(naming.gateway_principal(b))
    with pytest.raises(SaslAuthenticationFailed):
        await log_in(gateway_b)
    with pytest.raises(KafkaConnectionError):
        await produce(gateway_b, naming.outbox_topic(b))
    assert naming.gateway_principal(b) not in read_secrets(world.secrets)
    # The other participant is untouched.
    await produce(world.login(naming.gateway_principal(world.a)), naming.outbox_topic(world.a))


async def test_a_second_run_changes_nothing(world: World) -> None:
    again = await provision(
        _trust(world.a, world.b, world.auditor),
        world.kafka.admin,
        world.secrets,
        scope={world.a, world.b},
    )
    assert again.plan.empty, again.plan.lines()
    assert not again.applied
    assert world.secrets.stat().st_mode & 0o777 == 0o600
