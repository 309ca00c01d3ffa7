"""A worker decides each record of a batch by its own signature's answer and the memory of
every record before it, however many batches of signature checks the batch spans."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.demo.sandbox import Sandbox, make_sandbox, open_agreements
from border_exchange.domain import naming, signature_batch
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal
from border_exchange.services.router import PartitionWorker, PolicyView, Router
from tests import clock

OUTBOX = naming.outbox_topic("CAF")
RECORDS = 2 * signature_batch.BATCH + 100
"""More records than two batches of signature checks: the answers come in three."""
TAMPERED = frozenset({0, 5, signature_batch.BATCH - 1, signature_batch.BATCH, RECORDS - 1})
"""Indexes whose signature is broken: at the edges of the batches of checks."""
REPLAYED = {signature_batch.BATCH + 7: 3, RECORDS - 2: signature_batch.BATCH + 1}
"""Index of a re-sent record: the index of the earlier record of the same batch it repeats."""


class _Consumer:
    """What the worker asks the consumer: every topic has one partition."""

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return make_sandbox(["CAF", "COD"], open_agreements([("CAF", "COD")]))


def _records(box: Sandbox) -> list[ConsumerRecord[bytes, bytes]]:
    template = sample_alert(AlertType.WANTED_PERSON, origin="CAF")
    template = type(template).model_validate(
        {**template.model_dump(), "expires_at": clock.now() + timedelta(days=30)}
    )
    values: list[tuple[bytes, bytes]] = []
    for index in range(RECORDS):
        if index in REPLAYED:
            values.append(values[REPLAYED[index]])
            continue
        envelope = seal(
            template,
            signing_key=box.keys["CAF"],
            key_id=box.key_ids["CAF"],
            message_id=uuid.uuid4().hex,
            issued_at=clock.now(),
            alert_id=uuid.uuid4().hex,
        )
        if index in TAMPERED:
            flipped = bytes([envelope.signature[0] ^ 1]) + envelope.signature[1:]
            envelope = replace(envelope, signature=flipped)
        values.append((envelope.header.alert_id.encode(), encode_envelope(envelope)))
    return [
        ConsumerRecord(OUTBOX, 0, offset, 0, 0, key, value, None, len(key), len(value), [])
        for offset, (key, value) in enumerate(values)
    ]


def _decisions(outputs: list[Any]) -> dict[int, str]:
    """Per outbox offset, what its audit record says: DECISION or the quarantine reason."""
    decided: dict[int, str] = {}
    for output in outputs:
        if output.topic != naming.audit_topic("CAF"):
            continue
        _, audit = decode_record(output.value)
        if audit["kind"] == "DECISION":
            decided[audit["source_offset"]] = "DECISION"
        elif audit["kind"] == "QUARANTINE":
            decided[audit["source_offset"]] = audit["quarantine_reason"]
    return decided


async def test_each_record_is_decided_by_its_own_answer_after_every_earlier_one(
    box: Sandbox,
) -> None:
    router = Router(
        KafkaSettings("127.0.0.1:9", "PLAINTEXT"),
        PolicyView.build(box.trust, box.agreements),
        box.keys["hub"],
        box.key_ids["hub"],
    )
    router.consumer = _Consumer()  # the partition counts only (aiokafka is untyped)
    worker = PartitionWorker(router, TopicPartition(OUTBOX, 0), 1)
    try:
        outputs = await worker._route_all(_records(box))
    finally:
        worker._close_signature_checks()

    expected = {
        index: "BAD_SIGNATURE"
        if index in TAMPERED
        else "REPLAYED"
        if index in REPLAYED
        else "DECISION"
        for index in range(RECORDS)
    }
    assert _decisions(outputs) == expected
    copies = [o for o in outputs if o.topic == naming.feed_topic("COD", "CAF")]
    assert [o.source for o in copies] == [i for i, d in expected.items() if d == "DECISION"]
