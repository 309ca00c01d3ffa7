"""A replay across a trust store change checks each record under the store in force when the
router decided it (``domain.trust_timeline``), not under one store for the whole window.

The routed world here lives on its own fixed calendar (``test_audit_verify.T0``): the
verdict depends only on the world's own times, never on the run's clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType

from nacl.signing import SigningKey

from border_exchange.domain.audit_values import Verdict, ViolationCode, Window
from border_exchange.domain.audit_verdict import Replay
from border_exchange.domain.naming import audit_topic, outbox_topic
from border_exchange.domain.trust import PublicKey, TrustStore
from border_exchange.domain.trust_timeline import TrustTimeline
from tests.unit.test_audit_verify import SET_V1, T0, TRUST, VALID, RoutedWorld, routed_world


def _rotated(trust: TrustStore) -> TrustStore:
    """``trust`` with CAF's only key replaced by a new one (the old one no longer listed)."""
    caf = trust.participants["CAF"]
    new = PublicKey("CAF", "CAF-2026-02", bytes(SigningKey(bytes([7]) * 32).verify_key), *VALID)
    members = {**trust.participants, "CAF": replace(caf, keys=(new,))}
    return replace(trust, participants=MappingProxyType(members))


def _replay(world: RoutedWorld, trust: TrustStore | TrustTimeline) -> Verdict:
    replay = Replay(Window(T0, T0 + timedelta(days=1)), trust, {SET_V1.digest: SET_V1})
    replay.add_chain(audit_topic(world.origin), 0, world.audit)
    replay.add_outbox(outbox_topic(world.origin), 0, world.outbox)
    for logs in world.feeds.values():
        replay.add_feed(logs)
    replay.add_quarantine(world.quarantine)
    return replay.verdict()


def _change_at(world: RoutedWorld) -> datetime:
    """A moment between the world's fourth and fifth decisions."""
    return world.audit[3].timestamp + timedelta(milliseconds=500)


def test_records_after_a_change_are_checked_under_the_new_store_only() -> None:
    world = routed_world()
    change = _change_at(world)

    verdict = _replay(world, TrustTimeline(TRUST, ((change, _rotated(TRUST)),)))

    # CAF's messages decided after the change name a key the new store no longer lists.
    invalid = [v for v in verdict.violations if v.code is ViolationCode.SIGNATURE_INVALID]
    assert invalid
    assert all("CAF-2026" in v.detail for v in invalid)
    outbox = {log.offset: log for log in world.outbox}
    decided = {v.offset for v in invalid if v.topic == outbox_topic("CAF")}
    assert decided
    assert all(outbox[offset].timestamp > change for offset in decided)
    assert min(outbox[o].timestamp for o in decided) < world.outbox[-1].timestamp


def test_the_same_records_replay_clean_when_the_change_comes_after_them() -> None:
    world = routed_world()
    later = world.outbox[-1].timestamp + timedelta(hours=1)

    assert _replay(world, TrustTimeline(TRUST, ((later, _rotated(TRUST)),))).clean
    assert not _replay(world, _rotated(TRUST)).clean  # the new store throughout: refused


def test_a_timeline_gives_the_store_in_force_at_each_moment() -> None:
    rotated = _rotated(TRUST)
    timeline = TrustTimeline.of([(T0 + timedelta(hours=1), rotated), (T0, TRUST)])
    assert timeline.at(T0 - timedelta(days=1)) is TRUST  # before any change: the first
    assert timeline.at(T0 + timedelta(minutes=59)) is TRUST
    assert timeline.at(T0 + timedelta(hours=1)) is rotated  # from its time on
    assert timeline.stores == (TRUST, rotated)
