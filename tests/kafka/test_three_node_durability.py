"""A broker killed mid-stream on a three-node cluster (replication 3, min ISR 2): the
project's gateways and router go on, and every acknowledged alert reaches each partner
exactly once, counted as a multiset so that a duplicate shows."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from border_exchange.adapters import kafka_launcher
from border_exchange.demo.sandbox import open_agreements
from border_exchange.domain.catalog import AlertType
from border_exchange.errors import BorderExchangeError
from border_exchange.services.gateway import Gateway
from tests.conftest import KafkaCluster
from tests.exchange import every_copy_once, make_exchange, running

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROUNDS = 12
BATCH = 20
TYPES = (AlertType.WANTED_PERSON, AlertType.VEHICLE_NOTICE, AlertType.BORDER_INCIDENT)


async def test_no_acknowledged_alert_is_lost_or_doubled_when_a_broker_is_killed_mid_stream(
    kafka3: KafkaCluster,
) -> None:
    info = kafka3.info
    assert info is not None
    pairs = [("P0", "P1"), ("P0", "P2"), ("P1", "P2")]
    ex = await make_exchange(kafka3, 3, open_agreements(pairs), replication=3, min_isr=2)
    victim = info.nodes[1]
    sent: list[tuple[str, str]] = []
    failed_batches = 0
    kill: asyncio.Task[None] | None = None
    async with contextlib.AsyncExitStack() as stack, running(ex.router(batch_size=100)):
        gateways = {
            origin: await stack.enter_async_context(
                Gateway(
                    ex.settings,
                    origin,
                    ex.sandbox.keys[origin],
                    ex.sandbox.key_ids[origin],
                    ex.sandbox.trust,
                    producer_options={"request_timeout_ms": 30000},
                )
            )
            for origin in ex.ids
        }
        for round_ in range(ROUNDS):
            if round_ == ROUNDS // 3:
                # SIGKILL, as a crash (no controlled shutdown, no leader hand-over),
                # while the gateways publish and the router routes.
                kill = asyncio.create_task(asyncio.to_thread(kafka_launcher.kill_node, victim))
            for i, (origin, gateway) in enumerate(gateways.items()):
                alerts = [
                    ex.alert(TYPES[(round_ + i + k) % 3], origin, language="en")
                    for k in range(BATCH)
                ]
                try:
                    receipts = await gateway.publish_batch(alerts)
                except BorderExchangeError:
                    # Not acknowledged, yet its commit may have happened: published
                    # again; the first try's copies may show, once each at most.
                    failed_batches += 1
                    receipts = await gateway.publish_batch(alerts)
                sent += [(origin, r.message_id) for r in receipts]
        # The router delivers every acknowledged alert to each of its two partners.
        for origin in ex.ids:
            count = sum(1 for o, _ in sent if o == origin)
            for recipient in set(ex.ids) - {origin}:
                await ex.feed(recipient, origin, expect=count, wait=180)
    assert kill is not None
    await kill  # the node stays down: the session's kafka3 is stopped after the tests
    assert len(sent) == ROUNDS * BATCH * 3
    await every_copy_once(ex, sent, unknown=failed_batches * BATCH)
