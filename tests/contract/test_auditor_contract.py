"""The auditor's contract with Kafka (``services.auditor.KafkaReader``), on both sides.

The auditor turns a window of time into offsets (``offsets_for_times``) and reads what
is committed between them: an aborted transaction inside the window is never read, a
transaction's marker offsets are stepped over, and what retention deleted is reported
as where the partition now starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from border_exchange.adapters.kafka_clients import TopicPartition
from border_exchange.services.auditor import KafkaReader, Progress
from tests.contract.conftest import Side
from tests.exchange import random_ids
from tests.waiting import eventually

Stamped = Sequence[tuple[bytes, datetime]]


async def _transaction(side: Side, tp: TopicPartition, records: Stamped, commit: bool) -> None:
    """Write ``records`` (value, timestamp) to ``tp`` in one transaction; commit or abort it."""
    async with side.transaction(f"contract-audit-{tp.topic}", commit=commit) as producer:
        for value, moment in records:
            sent = await producer.send(
                tp.topic,
                value,
                key=value,
                partition=tp.partition,
                timestamp_ms=int(moment.timestamp() * 1000),
            )
            await sent


def _reader(side: Side) -> KafkaReader:
    return KafkaReader(side.settings, Progress(every=1e9), side.clients)


async def _stable_end(side: Side, tp: TopicPartition, at_least: int) -> int:
    """The partition's last stable offset once it reached ``at_least`` (the broker writes a
    transaction's markers just after answering its commit or abort)."""
    found = [0]

    async def reached() -> bool:
        async with _reader(side) as reader:
            found[0] = await reader.end(tp)
        return found[0] >= at_least

    await eventually(reached, within=30, what=f"{tp} stable up to {at_least}")
    return found[0]


async def test_the_auditor_reads_a_window_of_committed_records_and_where_retention_starts(
    side: Side,
) -> None:
    topic = await side.create_topic(f"bx.{random_ids(1)[0]}.audit-contract")
    tp = TopicPartition(topic, 0)
    now = datetime.now(UTC).replace(microsecond=0)
    # Stamped ahead of the clock (within the broker's hour of tolerance), as the transaction
    # markers are stamped when written: a marker stamped inside the window would be where
    # ``offsets_for_times`` finds its end, on the broker as in the fake.
    hours = [now + timedelta(minutes=m) for m in (5, 10, 15, 20, 40)]
    # offsets: 0 before, 1 in, 2 marker | 3 aborted, 4 marker | 5 in, 6 after, 7 marker
    await _transaction(side, tp, [(b"before", hours[0]), (b"in-1", hours[1])], commit=True)
    await _transaction(side, tp, [(b"aborted", hours[2])], commit=False)
    await _transaction(side, tp, [(b"in-2", hours[3]), (b"after", hours[4])], commit=True)
    end = await _stable_end(side, tp, 8)

    start_of_window, end_of_window = now + timedelta(minutes=7), now + timedelta(minutes=30)
    async with _reader(side) as reader:
        assert await reader.partitions(topic) == [tp]
        assert topic in await reader.topics()
        assert await reader.offset_at(tp, start_of_window) == 1
        assert await reader.offset_at(tp, end_of_window) == 6
        assert await reader.offset_at(tp, now + timedelta(minutes=50)) == end  # none after
        window = await reader.read_between(tp, start_of_window, end_of_window)
        assert [(r.offset, r.value, r.timestamp) for r in window] == [
            (1, b"in-1", hours[1]),
            (5, b"in-2", hours[3]),
        ]
        everything = await reader.read(tp, 0, end)
        assert [r.value for r in everything] == [b"before", b"in-1", b"in-2", b"after"]
        assert [r.key for r in everything] == [r.value for r in everything]
        assert await reader.retained(tp) == (0, hours[0])

    # Retention deleted the first transactions: the partition starts later, at an aborted
    # record, and its first committed record is the third.
    await side.delete_records(tp, 3)
    async with _reader(side) as reader:
        assert await reader.retained(tp) == (3, hours[3])
        assert [r.value for r in await reader.read(tp, 3, end)] == [b"in-2", b"after"]
