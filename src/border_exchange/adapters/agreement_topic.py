"""The agreements topic as a post reads it: every signed set the router published.

The router publishes each agreement set to ``bx.hub.agreements`` before it routes
anything under it, so a feed copy naming an agreement the post has not seen yet
means: read the topic on. ``AgreementTopic.refresh`` reads from where it stopped
to the end and rebuilds the ``AgreementBook`` of the post's service. A record that
is not a readable set, or whose key is not its digest, is logged and skipped.
"""

from __future__ import annotations

import structlog

from border_exchange.adapters.kafka_clients import AIOKAFKA, KafkaClients, TopicPartition
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.agreements import AgreementSet, parse_agreement_set
from border_exchange.domain.naming import AGREEMENTS_TOPIC
from border_exchange.domain.permitted import AgreementBook
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import BorderExchangeError

log = structlog.get_logger(__name__)


def read_set(value: bytes | None, key: bytes | None) -> AgreementSet | None:
    """The agreement set of one agreements-topic record, or None (logged) when unreadable."""
    try:
        aset = parse_agreement_set((value or b"").decode("utf-8"))
    except (BorderExchangeError, UnicodeDecodeError) as exc:
        log.warning("agreements.unreadable_record", error=str(exc))
        return None
    if key is not None and key.decode(errors="replace") != aset.digest:
        log.warning("agreements.digest_mismatch", key=key.decode(errors="replace"))
        return None
    return aset


class AgreementTopic:
    """The signed agreements of one service, read from the agreements topic."""

    def __init__(
        self,
        settings: KafkaSettings,
        trust: TrustStore,
        participant: str,
        clients: KafkaClients = AIOKAFKA,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.trust = trust
        self.participant = participant
        self.sets: dict[str, AgreementSet] = {}
        self.book = AgreementBook(participant)
        self._positions: dict[int, int] = {}

    async def refresh(self) -> AgreementBook:
        """Read the sets published since the last call; the book of the service's agreements."""
        consumer = self.clients.consumer(
            **self.settings.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            # The consumer's own metadata knows only assigned topics; ask for all (as the
            # auditor's reader does).
            cluster = await consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(AGREEMENTS_TOPIC) or set()
            tps = [TopicPartition(AGREEMENTS_TOPIC, p) for p in sorted(partitions)]
            if not tps:
                return self.book
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, self._positions.get(tp.partition, 0))
            idle = 0
            while idle < 5 and any([await consumer.position(tp) < ends[tp] for tp in tps]):
                batch = await consumer.getmany(*tps, timeout_ms=1000)
                idle = 0 if batch else idle + 1
                for tp, records in batch.items():
                    for record in records:
                        aset = read_set(record.value, record.key)
                        if aset is not None:
                            self.sets[aset.digest] = aset
                        self._positions[tp.partition] = record.offset + 1
            for tp in tps:
                self._positions[tp.partition] = max(
                    self._positions.get(tp.partition, 0), await consumer.position(tp)
                )
        finally:
            await consumer.stop()
        self.book = AgreementBook.of(self.sets.values(), self.trust, self.participant)
        log.info(
            "post.agreements_read",
            participant=self.participant,
            sets=len(self.sets),
            agreements=len(self.book.entries),
        )
        return self.book
