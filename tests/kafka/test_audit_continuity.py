"""Audit records deleted by a super user: the router goes on from the chain's last position and
delivers nothing twice, and the auditor says which records are gone and where."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from border_exchange.demo.sandbox import open_agreements
from border_exchange.domain import naming
from border_exchange.domain.audit import GENESIS, chain_hash
from border_exchange.domain.audit_chain import verify_chain
from border_exchange.domain.audit_values import LogRecord, ViolationCode, Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.partitioning import expected_partition
from border_exchange.services.auditor import KafkaReader, Progress, ReplayRequest, replay
from tests.conftest import KafkaCluster
from tests.exchange import PARTITIONS, Exchange, make_exchange, running
from tests.waiting import eventually

pytestmark = pytest.mark.kafka

WITHHOLDING = """
version: "withholding"
agreements:
  - id: A-B
    parties: [P0, P1]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: P0
        to: P1
        types:
          WANTED_PERSON: {sections: [identity, offence, contact], max_handling: H3}
"""


def _on_partition_0(ex: Exchange, origin: str) -> Envelope:
    """A wanted person from ``origin`` whose alert id Kafka puts on outbox partition 0."""
    while True:
        alert_id = uuid.uuid4().hex
        if expected_partition(alert_id.encode(), PARTITIONS) == 0:
            return ex.seal(ex.alert(AlertType.WANTED_PERSON, origin, alert_id=alert_id))


async def _records(ex: Exchange, tp: TopicPartition) -> list[LogRecord]:
    """The committed records of ``tp`` with their offsets."""
    async with KafkaReader(ex.settings, Progress(every=1e9)) as reader:
        end = await reader.end(tp)
        start = (await reader.consumer.beginning_offsets([tp]))[tp]
        return await reader.read(tp, start, end)


async def _delete_before(ex: Exchange, tp: TopicPartition, offset: int) -> None:
    """What a super user does with ``kafka-delete-records``."""
    admin = AIOKafkaAdminClient(**ex.settings.client_kwargs())
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(before_offset=offset)})
    finally:
        await admin.close()


async def _route_two_then_delete_the_first_decision(
    ex: Exchange,
) -> tuple[Envelope, Envelope, TopicPartition, int]:
    """Route two messages on partition 0, stop, delete the audit records up to the second's."""
    a, b = ex.ids
    first, second = _on_partition_0(ex, a), _on_partition_0(ex, a)
    async with running(ex.router()):
        await ex.publish(first, second)
        await ex.feed(b, a, expect=2)
    audit_tp = TopicPartition(naming.audit_topic(a), 0)
    logs = await _records(ex, audit_tp)
    decided = [log for log in logs if decode_record(log.value)[1]["kind"] == "DECISION"]
    assert len(decided) == 2
    await _delete_before(ex, audit_tp, decided[1].offset)
    return first, second, audit_tp, decided[1].offset


async def test_a_restarted_router_goes_on_from_the_last_seq_and_never_delivers_a_resend_twice(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]))
    a, b = ex.ids
    started = datetime.now(UTC)
    first, second, audit_tp, log_start = await _route_two_then_delete_the_first_decision(ex)
    before = await _records(ex, audit_tp)
    last = decode_record(before[-1].value)[1]
    third = _on_partition_0(ex, a)

    router = ex.router()
    async with running(router):
        # The message whose audit record is gone comes again, then a new one.
        await ex.publish(first, third)
        copies = await ex.feed(b, a, expect=3)
        await eventually(
            lambda: _audited(ex, audit_tp, _decided(before) + 2), what="both records audited"
        )
        worker = router.workers[TopicPartition(naming.outbox_topic(a), 0)]
        assert not worker.blocked
        assert worker.recovery is not None
        assert worker.recovery.messages == 1  # the first message, found in the feed

    assert Counter(e.header.message_id for e in copies) == {
        first.header.message_id: 1,
        second.header.message_id: 1,
        third.header.message_id: 1,
    }
    assert Counter(e.header.message_id for e in await ex.feed(b, a)) == Counter(
        e.header.message_id for e in copies
    )
    after = (await _records(ex, audit_tp))[len(before) :]
    new = [decode_record(log.value)[1] for log in after]
    # The chain goes on from the last recorded position and hash.
    assert new[0]["seq"] == last["seq"] + 1
    assert new[0]["prev_hash"] == chain_hash(before[-1].value) != GENESIS
    assert [r["seq"] for r in new] == list(range(last["seq"] + 1, last["seq"] + 1 + len(new)))
    resent = next(r for r in new if r["message_id"] == first.header.message_id)
    assert (resent["kind"], resent["quarantine_reason"]) == ("QUARANTINE", "REPLAYED")
    assert verify_chain(audit_tp.topic, 0, before + after, ex.sandbox.trust).violations == ()

    # The auditor names the deleted records at the audit topic, partition and offset.
    verdict = await replay(
        ex.settings,
        ex.sandbox.trust,
        ReplayRequest(Window(started - timedelta(minutes=1), datetime.now(UTC)), participant=a),
        progress=Progress(every=1e9),
    )
    found = [(v.code, v.topic, v.partition, v.offset) for v in verdict.violations]
    assert (ViolationCode.AUDIT_DELETED, audit_tp.topic, 0, log_start) in found
    assert not [v for v in verdict.violations if v.code is ViolationCode.CHAIN_BROKEN]
    assert not [v for v in verdict.violations if v.code is ViolationCode.FEED_DUPLICATE]


def _decided(logs: list[LogRecord]) -> int:
    """How many of ``logs`` are decisions or quarantines (not checkpoints)."""
    return sum(decode_record(log.value)[1]["kind"] != "CHECKPOINT" for log in logs)


async def _audited(ex: Exchange, tp: TopicPartition, count: int) -> bool:
    return _decided(await _records(ex, tp)) >= count


async def test_a_partition_whose_deliveries_cannot_be_recovered_is_held_until_accepted(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]))
    a, b = ex.ids
    first, _, _, log_start = await _route_two_then_delete_the_first_decision(ex)
    feed_tp = TopicPartition(naming.feed_topic(b, a), 0)  # where the copies of partition 0 go
    await _delete_before(ex, feed_tp, (await _records(ex, feed_tp))[-1].offset + 1)
    third = _on_partition_0(ex, a)
    outbox_tp = TopicPartition(naming.outbox_topic(a), 0)

    router = ex.router()
    async with running(router):
        await ex.publish(first, third)
        await eventually(lambda: outbox_tp in router.workers, what="partition 0 assigned")
        worker = router.workers[outbox_tp]
        assert worker.blocked
        assert worker.start_found is not None
        assert worker.start_found.token == f"{outbox_tp.topic}/0@{log_start}"
        await asyncio.sleep(3)  # time enough to route, were it allowed to
        assert await ex.feed(b, a) == []
        assert router.metrics.value("audit_gap", {"partition": f"{outbox_tp.topic}/0"}) == 1

    accepted = ex.router(accepted_audit_gaps=frozenset({worker.start_found.token}))
    async with running(accepted):
        copies = await ex.feed(b, a, expect=2)
    # Accepted by the operator: the re-sent first message is delivered again, knowingly.
    assert sorted(e.header.message_id for e in copies) == sorted(
        [first.header.message_id, third.header.message_id]
    )


async def test_a_forged_feed_copy_disclosing_a_withheld_section_is_named_by_the_auditor(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 2, WITHHOLDING)
    a, b = ex.ids
    started = datetime.now(UTC)
    envelope = _on_partition_0(ex, a)
    async with running(ex.router()):
        await ex.publish(envelope)
        (copy,) = await ex.feed(b, a, expect=1)
    assert "photo" not in copy.present_sections
    # A super user writes the whole alert, photo included, into the partner's feed.
    feed = naming.feed_topic(b, a)
    await ex.publish(raw=[(feed, envelope.header.alert_id.encode(), encode_envelope(envelope))])

    verdict = await replay(
        ex.settings,
        ex.sandbox.trust,
        ReplayRequest(Window(started - timedelta(minutes=1), datetime.now(UTC)), participant=a),
        progress=Progress(every=1e9),
    )

    (violation,) = verdict.violations
    assert (violation.code, violation.topic) == (ViolationCode.FEED_SECTION_DISCLOSED, feed)
    assert "photo" in violation.detail
    feed_logs = await _records(ex, TopicPartition(feed, violation.partition))
    assert violation.offset == feed_logs[-1].offset
