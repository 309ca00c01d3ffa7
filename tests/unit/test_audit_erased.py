"""An audit replay over a window whose outbox and feed records retention deleted."""

from __future__ import annotations

from datetime import timedelta

from border_exchange.domain.audit_values import Verdict, ViolationCode, Window
from border_exchange.domain.audit_verdict import Replay
from border_exchange.domain.naming import audit_topic, outbox_topic
from tests.unit.test_audit_verify import SET_V1, T0, TRUST, RoutedWorld, routed_world


def _replay(world: RoutedWorld, cut: int, *, retention_said: bool) -> tuple[Verdict, int]:
    """Replay ``world`` as if retention had deleted its first ``cut`` outbox records and the
    feed copies written before the first record kept; ``retention_said`` tells the replay
    where each partition starts now. Returns the verdict and how many copies went."""
    replay = Replay(Window(T0, T0 + timedelta(days=1)), TRUST, {SET_V1.digest: SET_V1})
    replay.add_chain(audit_topic(world.origin), 0, world.audit)
    kept = world.outbox[cut:]
    replay.add_outbox(outbox_topic(world.origin), 0, kept)
    since = kept[0].timestamp
    if retention_said:
        replay.add_retained(outbox_topic(world.origin), 0, kept[0].offset, since)
    dropped = 0
    for topic, logs in world.feeds.items():
        remaining = [log for log in logs if log.timestamp >= since]
        dropped += len(logs) - len(remaining)
        replay.add_feed(remaining)
        if retention_said:
            first = remaining[0] if remaining else None
            start = first.offset if first else len(logs)
            replay.add_retained(topic, 0, start, first.timestamp if first else None)
    replay.add_quarantine(world.quarantine)
    return replay.verdict(), dropped


def test_records_deleted_under_retention_are_counted_as_erased_and_the_rest_still_checked() -> None:
    world = routed_world()
    verdict, dropped = _replay(world, 4, retention_said=True)
    assert verdict.clean, verdict.violations
    assert (verdict.stats.erased_outbox, verdict.stats.erased_feed) == (4, dropped)
    assert dropped == 8
    assert verdict.stats.decisions == 8  # every decision re-evaluated, erased or not


def test_the_same_loss_without_retention_to_explain_it_is_still_missing() -> None:
    verdict, _ = _replay(routed_world(), 4, retention_said=False)
    found = {v.code for v in verdict.violations}
    assert found == {ViolationCode.AUDIT_WITHOUT_SOURCE, ViolationCode.FEED_MISSING}
    assert verdict.stats.erased_outbox == verdict.stats.erased_feed == 0
