"""SCRAM users and ACLs set through Kafka's protocol are what the broker's authorizer enforces."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from border_exchange.adapters.kafka_security import (
    create_acls,
    delete_acls,
    delete_scram_user,
    describe_acls,
    list_scram_users,
    upsert_scram_user,
)
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.acl import AclOperation, PatternType, topic_acl, user
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.kafka


async def _produce(settings: KafkaSettings, topic: str) -> None:
    producer = AIOKafkaProducer(**settings.client_kwargs(), request_timeout_ms=10000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"payload")
    finally:
        await producer.stop()


async def test_a_user_with_an_acl_produces_to_its_topic_and_is_refused_another(
    kafka: KafkaCluster,
) -> None:
    name = f"test.{uuid.uuid4().hex[:8]}"
    own = await kafka.create_topic(prefix=f"bx.sec.{name}")
    other = await kafka.create_topic(prefix="bx.sec.other")
    binding = topic_acl(user(name), AclOperation.WRITE, own)
    await upsert_scram_user(kafka.admin, name, "s3cret-password")
    await create_acls(kafka.admin, [binding])
    as_user = kafka.as_user(name, "s3cret-password")
    try:
        assert name in await list_scram_users(kafka.admin)
        assert await describe_acls(kafka.admin, user(name)) == {binding}

        await _produce(as_user, own)
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(as_user, other)
    finally:
        assert await delete_acls(kafka.admin, [binding]) == 1
        assert await delete_scram_user(kafka.admin, name)
    assert await describe_acls(kafka.admin, user(name)) == frozenset()
    assert name not in await list_scram_users(kafka.admin)


async def test_prefixed_acls_round_trip_and_deleting_twice_removes_nothing(
    kafka: KafkaCluster,
) -> None:
    principal = user(f"test.{uuid.uuid4().hex[:8]}")
    binding = topic_acl(principal, AclOperation.READ, "bx.sec.prefix.", PatternType.PREFIXED)
    await create_acls(kafka.admin, [binding, binding])
    assert await describe_acls(kafka.admin, principal) == {binding}
    assert await delete_acls(kafka.admin, [binding]) == 1
    assert await delete_acls(kafka.admin, [binding]) == 0


async def test_deleting_a_user_without_credentials_reports_it(kafka: KafkaCluster) -> None:
    assert not await delete_scram_user(kafka.admin, f"nobody.{uuid.uuid4().hex[:8]}")
