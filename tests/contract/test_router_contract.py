"""The router's contract with Kafka (``services.router``), on both sides.

The router reads an outbox ``read_committed`` as a consumer group, and writes each batch's
copies, feed states, audit records and the group's offset in one transaction of a
producer per outbox partition. On both sides: a message in an aborted outbox transaction
is never routed; a routing transaction that aborts (a send refused) leaves nothing a
``read_committed`` reader sees, and the message is routed again, once; a restarted
router goes on from where the last one committed, repeating nothing; a producer started
with the transactional id of an earlier one fences it (what it left open is aborted).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from aiokafka.errors import KafkaError, NotEnoughReplicasError, ProducerFenced

from border_exchange.demo.sandbox import make_sandbox, open_agreements
from border_exchange.domain import naming
from border_exchange.domain.audit import AuditKind
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_envelope, decode_record, encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal
from border_exchange.services.router import PolicyView, Router, RouterTuning
from tests.contract.conftest import Side
from tests.exchange import random_ids, running
from tests.waiting import eventually


class FirstFeedBatchFails:
    """A producer of either side whose first record batch (or send) for ``feed`` fails unsent, as if
    the broker had answered NOT_ENOUGH_REPLICAS for it."""

    failed: ClassVar[list[str]] = []

    def __init__(self, inner: Any, feed: str) -> None:
        self.inner = inner
        self.feed = feed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _fails_first(self, topic: str) -> asyncio.Future[Any] | None:
        if topic != self.feed or FirstFeedBatchFails.failed:
            return None
        FirstFeedBatchFails.failed.append(topic)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(NotEnoughReplicasError())
        return future

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        failed = self._fails_first(topic)
        if failed is not None:
            return failed
        return await self.inner.send_batch(batch, topic, partition=partition)

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        # A feed whose partitions the router's metadata does not show yet gets its copies
        # one send each (the default partitioner): that first send fails the same way.
        failed = self._fails_first(topic)
        if failed is not None:
            return failed
        return await self.inner.send(topic, *args, **kwargs)


class Exchange:
    """Two participants on one side: ``a`` sends, ``b`` may receive everything."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.a, self.b = random_ids(2)
        text = open_agreements([("P0", "P1")]).replace("P0", self.a).replace("P1", self.b)
        self.sandbox = make_sandbox([self.a, self.b], text)
        self.group = f"{naming.ROUTER_GROUP}.contract.{uuid.uuid4().hex[:8]}"
        self.feed = naming.feed_topic(self.b, self.a)

    def router(self, failing: bool = False) -> Router:
        sandbox = self.sandbox
        tuning = RouterTuning(
            group_id=self.group,
            outbox_pattern=rf"^bx\.{self.a}\.outbox$",
            topic_refresh=1.0,
            checkpoint_interval=1.0,
        )
        view = PolicyView.build(sandbox.trust, sandbox.agreements, sandbox.governance())
        router = Router(
            self.side.settings,
            view,
            sandbox.hub_key,
            sandbox.key_ids["hub"],
            tuning=tuning,
            clients=self.side.clients,
        )
        if failing:
            make = router.producer_factory
            router.producer_factory = lambda **o: FirstFeedBatchFails(make(**o), self.feed)
        return router

    def message(self) -> Envelope:
        alert = sample_alert(AlertType.VEHICLE_NOTICE, origin=self.a, alert_id=uuid.uuid4().hex)
        return seal(
            alert,
            signing_key=self.sandbox.keys[self.a],
            key_id=self.sandbox.key_ids[self.a],
            message_id=uuid.uuid4().hex,
            issued_at=datetime.now(UTC),
        )

    async def publish(self, *envelopes: Envelope, commit: bool = True) -> None:
        """Write ``envelopes`` to ``a``'s outbox in one transaction; commit or abort it."""
        async with self.side.transaction(f"contract-gateway-{self.a}", commit=commit) as producer:
            for envelope in envelopes:
                header = envelope.header
                topic = naming.outbox_topic(header.origin)
                await (
                    await producer.send(
                        topic, encode_envelope(envelope), key=header.alert_id.encode()
                    )
                )

    async def delivered(self) -> list[str]:
        """The message ids in ``b``'s feed of ``a``, as a ``read_committed`` reader sees it."""
        return [decode_envelope(r.value).header.message_id for r in await self.side.read(self.feed)]

    async def decided(self, committed: bool = True) -> list[str]:
        """The message ids of the decisions in ``a``'s audit trail."""
        records = await self.side.read(naming.audit_topic(self.a), committed=committed)
        audits = [decode_record(r.value)[1] for r in records]
        return [a["message_id"] for a in audits if a["kind"] == AuditKind.DECISION.value]


async def _until_delivered(ex: Exchange, count: int) -> None:
    async def enough() -> bool:
        return len(await ex.delivered()) >= count

    await eventually(enough, within=120, what=f"{count} copies in {ex.feed}")


async def test_the_router_routes_each_committed_message_once_across_an_abort_and_a_restart(
    side: Side,
) -> None:
    ex = Exchange(side)
    await side.create_exchange([ex.a, ex.b])
    first, aborted, second, third = (ex.message() for _ in range(4))
    await ex.publish(first)
    await ex.publish(aborted, commit=False)  # never routed: read_committed never sees it
    await ex.publish(second)
    FirstFeedBatchFails.failed.clear()

    async with running(ex.router(failing=True)):
        await _until_delivered(ex, 2)
    assert FirstFeedBatchFails.failed == [ex.feed]  # one routing transaction aborted
    # Its audit records were written, then aborted: only a read_uncommitted reader sees them.
    assert len(await ex.decided(committed=False)) > len(await ex.decided())

    async with running(ex.router()):  # restarted: on from the last commit
        await ex.publish(third)
        await _until_delivered(ex, 3)

    sent = [e.header.message_id for e in (first, second, third)]
    assert Counter(await ex.delivered()) == Counter(sent)  # each exactly once
    assert Counter(await ex.decided()) == Counter(sent)
    assert aborted.header.message_id not in await ex.decided(committed=False)
    quarantined = [decode_record(r.value)[1] for r in await side.read(naming.QUARANTINE_TOPIC)]
    assert [q for q in quarantined if q["source_topic"] == naming.outbox_topic(ex.a)] == []


async def test_a_producer_started_with_a_partitions_transactional_id_fences_the_earlier_one(
    side: Side,
) -> None:
    # The router's fencing of a zombie (a transactional id per outbox partition).
    topic = await side.create_topic(f"bx.{random_ids(1)[0]}.fencing-contract")

    def producer() -> Any:
        return side.clients.producer(
            **side.settings.client_kwargs(),
            transactional_id=f"contract-fence-{topic}",
            enable_idempotence=True,
            acks="all",
        )

    zombie, successor = producer(), producer()
    await zombie.start()
    try:
        await zombie.begin_transaction()
        await (await zombie.send(topic, b"zombie", key=b"k", partition=0))
        await successor.start()  # fences the zombie, aborting what it left open
        try:
            with pytest.raises(ProducerFenced):
                await asyncio.wait_for(zombie.commit_transaction(), 30)
            async with successor.transaction():
                await (await successor.send(topic, b"successor", key=b"k", partition=0))
        finally:
            await successor.stop()
    finally:
        with contextlib.suppress(KafkaError):
            await zombie.stop()

    async def settled() -> bool:
        return [r.value for r in await side.read(topic)] == [b"successor"]

    await eventually(settled, within=30, what="only the successor's record committed")
    assert [r.value for r in await side.read(topic, committed=False)] == [b"zombie", b"successor"]
