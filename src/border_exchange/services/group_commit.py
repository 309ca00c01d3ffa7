"""Group commit: concurrent publishes share one outbox transaction.

The gateway runs one transaction at a time. While it runs, requests queue; the next
transaction takes every queued request (up to ``GROUP_MAX_ALERTS`` requests and
``GROUP_MAX_BYTES`` of them), so under load a transaction carries many alerts and each
waiter still learns its own outcome only once that transaction has committed.

What a group's members owe each other:

- an invalid request (one the gateway refuses to seal) gets its own ``ValidationError``
  and the others in its group are published;
- a transaction that fails (the broker) fails every member with ``KafkaError``: none of
  them was published, each may retry;
- an unexpected error while publishing a group is not blamed on all of it: each member is
  then published in a transaction of its own, so only the culprit fails;
- a waiter that goes away (its client disconnected, its task cancelled) does not withdraw
  its request: it is published all the same (the HTTP layer records its answer).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from border_exchange.domain.alerts import AlertInput
from border_exchange.domain.gateway_api import GROUP_MAX_ALERTS, GROUP_MAX_BYTES
from border_exchange.errors import KafkaError, ValidationError
from border_exchange.services.gateway import Cancellation, Receipt

log = structlog.get_logger(__name__)

PublishRequest = AlertInput | Cancellation


class Publisher(Protocol):
    """What group commit needs of a gateway."""

    async def publish_each(
        self, requests: Sequence[PublishRequest]
    ) -> list[Receipt | ValidationError]:
        """Seal each request on its own and publish the valid ones in one transaction."""
        ...


@dataclass(slots=True)
class _Waiting:
    request: PublishRequest
    size: int
    future: asyncio.Future[Receipt] = field(repr=False)


def _settle(waiting: _Waiting, outcome: Receipt | BaseException) -> None:
    if waiting.future.done():  # only a cancelled future is done before it is settled
        return
    if isinstance(outcome, BaseException):
        waiting.future.set_exception(outcome)
    else:
        waiting.future.set_result(outcome)


def _retrieved(future: asyncio.Future[Receipt]) -> None:
    # an outcome nobody awaits any more (its client went away) is not an error to report
    if not future.cancelled():
        future.exception()


class GroupCommit:
    """Publishes through ``publisher``, one transaction per group of concurrent requests."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        max_alerts: int = GROUP_MAX_ALERTS,
        max_bytes: int = GROUP_MAX_BYTES,
        on_group: Callable[[int], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.max_alerts = max_alerts
        self.max_bytes = max_bytes
        self.on_group = on_group
        """Told the size of each group published (one transaction; a group split up
        counts each member as a group of its own)."""
        self._queue: deque[_Waiting] = deque()
        self._worker: asyncio.Task[None] | None = None

    async def publish(self, request: PublishRequest, size: int = 0) -> Receipt:
        """Publish ``request`` (``size`` bytes as received) in the next group's transaction.

        Returns once that transaction has committed; raises the request's own
        ``ValidationError``, or ``KafkaError`` when the transaction failed.
        """
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)
        self._queue.append(_Waiting(request, size, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="group commit")
        return await future

    async def close(self) -> None:
        """Wait until every queued request has its outcome."""
        if self._worker is not None:
            await self._worker

    def _take(self) -> list[_Waiting]:
        group = [self._queue.popleft()]
        size = group[0].size
        while self._queue and len(group) < self.max_alerts:
            if size + self._queue[0].size > self.max_bytes:
                break
            waiting = self._queue.popleft()
            group.append(waiting)
            size += waiting.size
        return group

    async def _run(self) -> None:
        while self._queue:
            group = self._take()
            try:
                await self._commit(group)
            except BaseException as exc:  # the worker itself is cancelled: nobody is left waiting
                for waiting in group:
                    _settle(waiting, KafkaError(f"the gateway stopped: {exc!r}"))
                raise

    async def _commit(self, group: list[_Waiting]) -> None:
        if self.on_group is not None:
            self.on_group(len(group))
        try:
            outcomes = await self.publisher.publish_each([w.request for w in group])
        except KafkaError as exc:
            for waiting in group:
                failed = KafkaError(str(exc))
                failed.__cause__ = exc
                _settle(waiting, failed)
            return
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], exc)
                return
            log.warning("group_commit.split", size=len(group), error=repr(exc))
            for waiting in group:
                await self._commit([waiting])
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            _settle(waiting, outcome)
