"""The auditor matches a bounded quarantine record to the outbox record by length and hash."""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta

from border_exchange.domain import limits
from border_exchange.domain.audit_values import ViolationCode
from border_exchange.domain.quarantine import RefusedRecord, encode_quarantine
from tests.unit.test_audit_verify import T0, RoutedWorld, codes


def _refused_world(value: bytes, recorded: bytes) -> RoutedWorld:
    """A world that quarantined ``value``, its quarantine record made of ``recorded``."""
    world = RoutedWorld()
    world.route(world.seal())
    world.refuse(value)
    log = world.quarantine[-1]
    refused = RefusedRecord(
        world.outbox[-1].topic,
        0,
        world.outbox[-1].offset,
        None,
        recorded,
        "TOO_LARGE",
        "too large",
    )
    data = encode_quarantine(refused, T0 + timedelta(minutes=1))
    world.quarantine[-1] = dataclasses.replace(log, value=data)
    return world


def test_a_quarantine_record_of_the_outbox_bytes_verifies_clean() -> None:
    value = os.urandom(limits.QUARANTINE_PREFIX_BYTES * 3)
    verdict = _refused_world(value, value).replay()
    assert verdict.clean, verdict.violations


def test_a_quarantine_record_of_other_bytes_is_a_mismatch() -> None:
    value = os.urandom(limits.QUARANTINE_PREFIX_BYTES * 3)
    # the same prefix and length, another tail: only the hash tells
    other = value[:-1] + bytes([value[-1] ^ 1])
    verdict = _refused_world(value, other).replay()
    assert [code for code, _ in codes(verdict)] == [ViolationCode.QUARANTINE_MISMATCH]
