"""A bootstrap's state records checked in a second process, beside the store's work.

Checking a record (decoding it, its digests, its signature, its sections) is Python
work that holds the GIL, and so is most of storing it: on one process they take turns
however many threads run them. A bootstrap of tens of thousands of alerts therefore
checks its records in worker processes (forked, so they hold the same check, trust
store and keys without them being sent) while the post's process stores the partition
checked before. Each record is checked there exactly as in the post's process
(``post.outcome_of``, signature included), and what storing it needs beside the store
is made there too (``post_store.prepare``: its content sealed at rest under fresh keys,
its search rows), leaving the post's process the SQLite statements. What comes back, in
order, is each refusal or each prepared record: plain values, which cross between
processes at a fraction of the cost of a decoded record.

Only where the ``fork`` start method exists (Linux, the platform of the posts); elsewhere,
or for a small state, the records are checked in the post's process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, Final

from border_exchange.adapters.kafka_clients import ConsumerRecord
from border_exchange.adapters.post_store import Accepted, Ready, prepare
from border_exchange.domain.trust import TrustStore

if TYPE_CHECKING:  # post_state uses this module
    from border_exchange.services.post_state import Check

POOL_FROM: Final = 2000
"""A state partition of at least this many records is checked in the worker process."""
CHUNK: Final = 1000
"""Records sent to a worker process at a time."""
WORKERS: Final = 2
"""Worker processes (at most the machine's processors): with the post's own process
storing, a two-core machine has both cores busy."""

_installed: tuple[Check, TrustStore, str] | None = None

Item = tuple[str, int, int, int, int, bytes | None, bytes | None, Any]
"""What a record is sent as: topic, partition, offset, timestamp and its type, key,
value and headers."""


def _install(check: Check, trust: TrustStore, participant: str) -> None:
    global _installed
    _installed = (check, trust, participant)


def _item(record: ConsumerRecord) -> Item:
    return (
        record.topic, record.partition, record.offset, record.timestamp,
        record.timestamp_type, record.key, record.value, list(record.headers or ()),
    )  # fmt: skip


def _check_chunk(items: Sequence[Item], feed_topic: str) -> list[Ready]:
    """``items`` checked as records of ``feed_topic``: each refused, or accepted and
    prepared for the store (in a worker)."""
    assert _installed is not None  # the pool's initializer ran
    check, trust, participant = _installed
    done: list[Ready] = []
    for topic, partition, offset, at, kind, key, value, headers in items:
        record = ConsumerRecord(
            topic, partition, offset, at, kind, key, value, None,
            len(key or b""), len(value or b""), headers,
        )  # fmt: skip
        outcome = check(record, trust, participant, topic=feed_topic)
        done.append(prepare(outcome) if isinstance(outcome, Accepted) else outcome)
    return done


def available() -> bool:
    """Whether a worker process can be forked here."""
    return "fork" in multiprocessing.get_all_start_methods()


class CheckPool:
    """Worker processes checking state records; ``close`` ends them."""

    def __init__(self, check: Check, trust: TrustStore, participant: str) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=max(1, min(WORKERS, os.cpu_count() or 1)),
            mp_context=multiprocessing.get_context("fork"),
            initializer=_install,
            initargs=(check, trust, participant),
        )

    async def check(self, records: Sequence[ConsumerRecord], feed_topic: str) -> list[Ready]:
        """``records`` checked as records of ``feed_topic``, in order: each refused, or
        accepted and prepared for the store."""
        loop = asyncio.get_running_loop()
        chunks = [
            loop.run_in_executor(
                self._pool, _check_chunk, [_item(r) for r in records[at : at + CHUNK]], feed_topic
            )
            for at in range(0, len(records), CHUNK)
        ]
        return [ready for chunk in await asyncio.gather(*chunks) for ready in chunk]

    def close(self) -> None:
        """End the worker processes (after the checks asked for)."""
        self._pool.shutdown(wait=True)
