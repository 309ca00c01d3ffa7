"""The two sides every contract test runs on: the in-memory fake and the real broker.

A test takes ``side`` and asks it for what it needs: topics created, the settings and
clients that reach them, records deleted as retention would. The fake variant runs with
the unit tests; the broker variant is marked ``kafka``. When the two disagree, the fake
is wrong (or the test asks for something only one of them does).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from border_exchange.adapters.kafka_clients import AIOKAFKA, KafkaClients, TopicPartition
from border_exchange.adapters.kafka_settings import KafkaSettings
from tests.conftest import KafkaCluster
from tests.exchange import create_topics, exchange_topics
from tests.fake_kafka import FakeKafka


@dataclass
class Side:
    """The fake (``fake`` set) or the session's broker (``broker`` set)."""

    fake: FakeKafka | None = None
    broker: KafkaCluster | None = None

    @property
    def settings(self) -> KafkaSettings:
        """Settings reaching this side (an administrator's on the broker)."""
        return KafkaSettings("fake:9092") if self.broker is None else self.broker.admin

    @property
    def clients(self) -> KafkaClients:
        """The producers and consumers of this side."""
        return AIOKAFKA if self.fake is None else self.fake.clients

    @contextlib.asynccontextmanager
    async def transaction(self, transactional_id: str, *, commit: bool) -> AsyncIterator[Any]:
        """A transactional producer inside one transaction: what is sent through it is
        committed (or aborted, ``commit`` False) when the block ends; then it stops."""
        producer: Any = self.clients.producer(
            **self.settings.client_kwargs(),
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
        )
        await producer.start()
        try:
            await producer.begin_transaction()
            yield producer
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
        finally:
            await producer.stop()

    async def create_topic(self, name: str, partitions: int = 1) -> str:
        """Create topic ``name``; its name."""
        if self.fake is not None:
            return self.fake.create_topic(name, partitions)
        assert self.broker is not None
        return await self.broker.create_topic(name=name, partitions=partitions)

    async def create_exchange(self, ids: Sequence[str]) -> None:
        """Create the topics of an exchange of ``ids`` (``tests.exchange``)."""
        if self.fake is None:
            assert self.broker is not None
            await create_topics(self.broker.admin, ids)
            return
        for name, partitions, _ in exchange_topics(ids):
            self.fake.create_topic(name, partitions)

    async def read(self, topic: str, *, committed: bool = True) -> list[Any]:
        """Every record of ``topic`` now, as a ``read_committed`` reader sees them (or, with
        ``committed`` False, a ``read_uncommitted`` one)."""
        consumer: Any = self.clients.consumer(
            **self.settings.client_kwargs(),
            isolation_level="read_committed" if committed else "read_uncommitted",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            # aiokafka's public metadata calls do not refresh what partitions_for_topic reads
            cluster = await consumer._client.fetch_all_metadata()
            # (a topic just created may be missing from it for a moment: then nothing is read)
            partitions = cluster.partitions_for_topic(topic) or ()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not tps:
                return []
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            found: list[Any] = []
            for tp in tps:
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    found += [r for r in batch.get(tp, []) if r.offset < ends[tp]]
            return found
        finally:
            await consumer.stop()

    async def delete_records(self, tp: TopicPartition, before: int) -> None:
        """Delete the records of ``tp`` before offset ``before``, as retention would."""
        if self.fake is not None:
            self.fake.delete_records(tp, before)
            return
        admin = AIOKafkaAdminClient(**self.settings.client_kwargs())
        await admin.start()
        try:
            await admin.delete_records({tp: RecordsToDelete(before_offset=before)})
        finally:
            await admin.close()


@pytest.fixture(params=["fake", pytest.param("broker", marks=pytest.mark.kafka)])
def side(request: pytest.FixtureRequest) -> Side:
    """The in-memory fake, or the session's real broker."""
    if request.param == "fake":
        return Side(fake=FakeKafka())
    cluster: KafkaCluster = request.getfixturevalue("kafka")
    return Side(broker=cluster)
