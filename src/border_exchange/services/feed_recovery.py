"""Reading back what the router delivered, from the partner feeds, for a chain whose start was
deleted (``domain/audit_gap.py``)."""

from __future__ import annotations

from aiokafka.errors import KafkaError as AioKafkaError

from border_exchange.adapters.kafka_clients import AIOKAFKA, KafkaClients, TopicPartition
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.audit_gap import FeedRecovery
from border_exchange.domain.audit_values import LogRecord
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.naming import parse_feed_topic, parse_outbox_topic
from border_exchange.domain.routing import PartitionState
from border_exchange.errors import DecodeError
from border_exchange.services.auditor import KafkaReader, Progress

SOURCE_HEADER = "bx-source"
"""The Kafka header of every feed copy: the outbox record it copies (topic/partition/offset)."""


def copy_source(log: LogRecord) -> tuple[str, int, int] | None:
    """The outbox topic, partition and offset a feed copy names in ``bx-source``, or None."""
    value = log.header(SOURCE_HEADER)
    if value is None:
        return None
    rest, _, offset = value.decode(errors="replace").rpartition("/")
    topic, _, partition = rest.rpartition("/")
    try:
        return topic, int(partition), int(offset)
    except ValueError:
        return None


async def recover_from_feeds(
    kafka: KafkaSettings,
    outbox: TopicPartition,
    state: PartitionState,
    clients: KafkaClients = AIOKAFKA,
) -> FeedRecovery:
    """Remember in ``state`` every copy of ``outbox``'s messages found in a partner feed.

    Reads every feed of the outbox's owner to its end. Ids ``state`` knows already
    (decided by the chain's surviving records) are left as they are. A feed partition
    that lost records (its log starts past 0) or cannot be read makes the recovery
    incomplete.
    """
    origin = parse_outbox_topic(outbox.topic)
    known = frozenset(state.seen)
    copies = 0
    messages: set[str] = set()
    incomplete: list[str] = []
    async with KafkaReader(kafka, Progress(every=float("inf")), clients) as reader:
        feeds = sorted(t for t in await reader.topics() if _origin_of_feed(t) == origin)
        for topic in feeds:
            recipient = topic.split(".")[1]
            for tp in await reader.partitions(topic):
                where = f"{tp.topic}/{tp.partition}"
                try:
                    start = int((await reader.consumer.beginning_offsets([tp]))[tp])
                    logs = await reader.read(tp, start, await reader.end(tp))
                except AioKafkaError as exc:
                    incomplete.append(f"{where} ({exc!r})")
                    continue
                if start > 0:
                    incomplete.append(f"{where} (begins at offset {start})")
                for log in logs:
                    source = copy_source(log)
                    if source is None or source[:2] != (outbox.topic, outbox.partition):
                        continue
                    try:
                        header = decode_envelope(log.value).header
                    except DecodeError:
                        continue  # not a copy the router wrote: the auditor reports it
                    if header.message_id in known:
                        continue
                    state.recover_copy(header, recipient, source[2])
                    copies += 1
                    messages.add(header.message_id)
    return FeedRecovery(copies, len(messages), tuple(incomplete))


def _origin_of_feed(topic: str) -> str | None:
    parsed = parse_feed_topic(topic)
    return None if parsed is None else parsed[1]
