"""Discard a transactional producer for good, even when its broker is unreachable.

aiokafka's ``stop`` waits until every queued record batch is delivered: with the broker
gone it never returns. A producer abandoned in that state is not dead. Its sender task
keeps retrying, and once the broker is back it delivers what it still holds, under the
producer id and epoch it had: a record of a request already answered "nothing was
published" lands in the partition after all, and (without KIP-890, which aiokafka 0.14
lacks) the partition cannot tell it from the producer's earlier transaction there, so
it joins that transaction and shares its fate, abort included. ``discard`` therefore
fails what is queued, cancels the sender and closes the connections, so that nothing of
the producer reaches the broker after it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import structlog
from aiokafka.errors import KafkaConnectionError

from border_exchange.adapters.kafka_clients import Producer

log = structlog.get_logger(__name__)

_CANCEL_ROUNDS: Final = 20
"""Times the sender is cancelled (each cancel also ends a request it waits for)."""


def _retrieved(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


async def discard(producer: Producer, patience: float) -> None:
    """Stop ``producer`` within about ``patience`` seconds; then nothing it held is sent."""
    try:
        await asyncio.wait_for(producer.stop(), patience)
        return
    except Exception as exc:  # the broker is unreachable, or the producer broken
        log.warning("producer.stop_failed", error=repr(exc))
    # aiokafka has no public way to drop what a producer still holds: these are its
    # accumulator, its sender task and its client (aiokafka 0.14).
    accumulator = producer._message_accumulator
    for batch in [
        *(b for q in accumulator._batches.values() for b in q),
        *accumulator._pending_batches,
    ]:
        # nobody awaits them any more: the batch's future and each record's
        for future in [batch.future, *(f for f, _ in batch._msg_futures)]:
            future.add_done_callback(_retrieved)
    accumulator.fail_all(KafkaConnectionError("the producer was discarded"))
    task: asyncio.Task[None] | None = producer._sender.sender_task
    rounds = 0
    while task is not None and not task.done() and rounds < _CANCEL_ROUNDS:
        task.cancel()  # the sender then awaits its requests in flight: cancelled in turn
        await asyncio.wait({task}, timeout=0.1)
        rounds += 1
    if task is not None and not task.done():
        log.error("producer.sender_alive", rounds=rounds)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.client.close(), patience)
