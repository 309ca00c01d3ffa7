"""The router's erasure schedule: when each alert's state is tombstoned, and where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from border_exchange.domain.catalog import Operation
from border_exchange.domain.erasure import ErasureSchedule

DAY = timedelta(days=1)
NOW = datetime.now(UTC)


def test_an_alert_is_due_at_its_last_expiry_or_its_cancel_plus_grace() -> None:
    schedule = ErasureSchedule(grace=7 * DAY)
    schedule.note("a", Operation.CREATE, NOW + 10 * DAY, NOW, ["B"])
    schedule.note("a", Operation.UPDATE, NOW + 30 * DAY, NOW + DAY, ["C"])  # postponed
    schedule.note("c", Operation.CREATE, NOW + 300 * DAY, NOW, ["B"])
    schedule.note("c", Operation.CANCEL, NOW + 300 * DAY, NOW + 2 * DAY, [])
    assert schedule.take_due(NOW + 8 * DAY, 10) == []
    [cancelled] = schedule.take_due(NOW + 9 * DAY + timedelta(seconds=1), 10)
    assert (cancelled.alert_id, cancelled.recipients) == ("c", frozenset({"B"}))
    assert schedule.take_due(NOW + 36 * DAY, 10) == []
    [expired] = schedule.take_due(NOW + 37 * DAY, 10)
    assert (expired.alert_id, expired.recipients) == ("a", frozenset({"B", "C"}))


def test_a_second_tombstone_follows_after_the_segment_roll_and_failed_ones_come_back() -> None:
    schedule = ErasureSchedule(grace=DAY)
    schedule.note("a", Operation.CREATE, NOW, NOW, ["B"])
    first = schedule.take_due(NOW + 2 * DAY, 10)
    schedule.restore(first)  # the transaction failed
    again = schedule.take_due(NOW + 2 * DAY, 10)
    assert again == first
    schedule.written(again, NOW + 2 * DAY, timedelta(hours=1))
    [second] = schedule.take_due(NOW + 2 * DAY + timedelta(hours=1), 10)
    assert second.again
    assert second.recipients == frozenset({"B"})
    schedule.written([second], NOW + 3 * DAY, timedelta(hours=1))
    assert schedule.take_due(NOW + 30 * DAY, 10) == []  # two tombstones, no more


def test_rebuilt_from_the_audit_and_old_erasures_are_not_issued_again() -> None:
    schedule = ErasureSchedule(grace=DAY)
    for alert_id, expires in (("old", NOW - 60 * DAY), ("recent", NOW - 2 * DAY)):
        schedule.note_audit(
            {
                "kind": "DECISION",
                "alert_id": alert_id,
                "operation": "CREATE",
                "expires_at": expires,
                "recorded_at": expires - DAY,
                "outcomes": [
                    {"participant": "B", "delivered": True},
                    {"participant": "C", "delivered": False},
                ],
            }
        )
    schedule.note_audit({"kind": "CHECKPOINT"})
    assert schedule.forget_before(NOW - 35 * DAY) == 1
    [recent] = schedule.take_due(NOW, 10)
    assert (recent.alert_id, recent.recipients) == ("recent", frozenset({"B"}))


def test_a_router_down_longer_than_the_reissue_window_still_erases_what_fell_due_meanwhile() -> (
    None
):
    down_since = NOW - 60 * DAY  # the last message routed before the router went down
    schedule = ErasureSchedule(grace=7 * DAY)
    schedule.note("long-gone", Operation.CANCEL, NOW, down_since - 90 * DAY, ["B"])
    schedule.note("due-meanwhile", Operation.CANCEL, NOW + DAY, down_since - DAY, ["B"])
    schedule.note("in-force", Operation.CREATE, NOW + 300 * DAY, down_since, ["C"])
    assert schedule.last_routed == down_since
    assert schedule.forget_written(NOW, 35 * DAY) == 1  # erased by the previous run
    [meanwhile] = schedule.take_due(NOW, 10)
    assert meanwhile.alert_id == "due-meanwhile"  # due 54 days ago, while it was down
    assert set(schedule.pending) == {"in-force"}


def test_after_a_quick_restart_the_window_counts_from_now() -> None:
    schedule = ErasureSchedule(grace=DAY)
    schedule.note("old", Operation.CANCEL, NOW, NOW - 60 * DAY, ["B"])
    schedule.note("recent", Operation.CANCEL, NOW, NOW - 3 * DAY, ["B"])
    schedule.note("last", Operation.CREATE, NOW + 300 * DAY, NOW + timedelta(minutes=1), ["B"])
    assert schedule.forget_written(NOW, 35 * DAY) == 1
    assert sorted(schedule.pending) == ["last", "recent"]
