"""Group commit: concurrent publishes share one transaction, and each member of a group
keeps its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from border_exchange.domain.catalog import Operation
from border_exchange.errors import KafkaError, ValidationError
from border_exchange.services.gateway import Cancellation, Receipt
from border_exchange.services.group_commit import GroupCommit, PublishRequest


class FakePublisher:
    """Publishes each request as one "transaction" per call, after ``delay`` seconds.

    A request whose alert id starts with ``invalid`` is refused, ``crash`` raises an
    unexpected error for its whole call, and ``broker_down`` makes the call fail."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[list[str]] = []
        self.published: list[str] = []

    async def publish_each(
        self, requests: Sequence[PublishRequest]
    ) -> list[Receipt | ValidationError]:
        ids = [r.alert_id or "" for r in requests]
        self.calls.append(ids)
        await asyncio.sleep(self.delay)
        if any(i.startswith("crash") for i in ids):
            raise RuntimeError("a bug while sealing")
        if self.broker_down:
            raise KafkaError("the broker is unreachable")
        outcomes: list[Receipt | ValidationError] = []
        for offset, alert_id in enumerate(ids):
            if alert_id.startswith("invalid"):
                outcomes.append(ValidationError("invalid alert", (f"alert_id: {alert_id}",)))
            else:
                self.published.append(alert_id)
                outcomes.append(Receipt(f"m-{alert_id}", alert_id, 2, 0, offset, Operation.CANCEL))
        return outcomes

    broker_down = False


def cancel(alert_id: str) -> Cancellation:
    return Cancellation(alert_id, "withdrawn")


async def publish_all(group: GroupCommit, ids: Sequence[str]) -> list[Receipt | BaseException]:
    async with asyncio.timeout(10):  # a member left without an outcome fails, not hangs
        return await asyncio.gather(
            *(group.publish(cancel(i)) for i in ids), return_exceptions=True
        )


async def test_concurrent_publishes_share_one_transaction_and_each_gets_its_receipt() -> None:
    publisher = FakePublisher()
    sizes: list[int] = []
    group = GroupCommit(publisher, on_group=sizes.append)
    outcomes = await publish_all(group, ["a", "b", "c"])
    assert publisher.calls == [["a", "b", "c"]]
    assert sizes == [3]
    assert [o.alert_id for o in outcomes if isinstance(o, Receipt)] == ["a", "b", "c"]


async def test_requests_made_during_a_transaction_go_together_in_the_next() -> None:
    publisher = FakePublisher(delay=0.05)
    group = GroupCommit(publisher)
    first = asyncio.create_task(group.publish(cancel("first")))
    await asyncio.sleep(0.01)  # the first transaction is running
    later = await publish_all(group, ["x", "y", "z"])
    assert (await first).alert_id == "first"
    assert publisher.calls == [["first"], ["x", "y", "z"]]
    assert all(isinstance(o, Receipt) for o in later)


async def test_an_invalid_request_fails_alone_and_its_neighbours_are_published_once() -> None:
    publisher = FakePublisher()
    outcomes = await publish_all(GroupCommit(publisher), ["a", "invalid-b", "c"])
    assert isinstance(outcomes[1], ValidationError)
    assert "invalid-b" in str(outcomes[1].problems)
    assert [o.alert_id for o in outcomes if isinstance(o, Receipt)] == ["a", "c"]
    assert publisher.published == ["a", "c"]


async def test_a_failed_transaction_fails_every_member_and_publishes_none() -> None:
    publisher = FakePublisher()
    publisher.broker_down = True
    outcomes = await publish_all(GroupCommit(publisher), ["a", "b"])
    assert all(isinstance(o, KafkaError) for o in outcomes)
    assert outcomes[0] is not outcomes[1]  # each waiter raises its own exception
    assert publisher.published == []


async def test_an_unexpected_error_splits_the_group_so_only_the_culprit_fails() -> None:
    publisher = FakePublisher()
    outcomes = await publish_all(GroupCommit(publisher), ["a", "crash-b", "c"])
    assert isinstance(outcomes[1], RuntimeError)
    assert [o.alert_id for o in outcomes if isinstance(o, Receipt)] == ["a", "c"]
    assert publisher.calls == [["a", "crash-b", "c"], ["a"], ["crash-b"], ["c"]]
    assert publisher.published == ["a", "c"]  # published once each, after the split


async def test_a_group_holds_at_most_max_alerts_and_max_bytes() -> None:
    publisher = FakePublisher()
    group = GroupCommit(publisher, max_alerts=4, max_bytes=1000)
    await publish_all(group, [f"n{i}" for i in range(10)])
    assert [len(c) for c in publisher.calls] == [4, 4, 2]
    publisher.calls.clear()
    sized = [group.publish(cancel(f"s{i}"), size=400) for i in range(5)]
    await asyncio.gather(*sized)
    assert [len(c) for c in publisher.calls] == [2, 2, 1]
    publisher.calls.clear()
    await group.publish(cancel("huge"), size=5000)  # larger than a group: alone, still sent
    assert publisher.calls == [["huge"]]


async def test_a_waiter_that_goes_away_does_not_withdraw_its_request() -> None:
    publisher = FakePublisher(delay=0.05)
    group = GroupCommit(publisher)
    waiting = asyncio.create_task(group.publish(cancel("gone")))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await group.close()
    assert publisher.published == ["gone"]
