"""The auditor checks that the router routed under the governed store it was given."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from border_exchange.adapters.trust_file import load_governed
from border_exchange.demo.sandbox import Sandbox
from border_exchange.domain.audit_trust import in_force, trust_violations
from border_exchange.domain.audit_values import LogRecord, ViolationCode, Window
from border_exchange.domain.naming import AGREEMENTS_TOPIC
from border_exchange.domain.trust_governance import (
    TRUST_STORE_HEADER,
    GovernedStore,
    StoreReference,
)
from tests.unit.test_trust_governance import (
    NOW,
    _keys,
    _members,
    _write,
    box,  # noqa: F401  # a fixture, used by name
)

WINDOW = Window(NOW - timedelta(hours=2), NOW)


def _governed(sandbox: Sandbox, tmp_path: Path) -> GovernedStore:
    three = ("CAF", "COD", "SSD")
    path = tmp_path / "trust.yaml"
    keys = _keys(sandbox, three)
    _write(path, _members(sandbox, three), 3, keys, keys)
    return load_governed(path)[1]


def _record(offset: int, hours_ago: float, reference: StoreReference | None) -> LogRecord:
    headers = () if reference is None else ((TRUST_STORE_HEADER, reference.value()),)
    return LogRecord(
        AGREEMENTS_TOPIC, 0, offset, NOW - timedelta(hours=hours_ago), b"", b"set", headers
    )


def test_the_stores_in_force_are_the_last_before_the_window_and_those_inside() -> None:
    records = [_record(0, 5, None), _record(1, 3, None), _record(2, 1, None), _record(3, -1, None)]
    assert [r.offset for r in in_force(records, WINDOW)] == [1, 2]


def test_decisions_under_the_given_governed_store_are_clean(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    governance = _governed(box, tmp_path)
    given = StoreReference.of(governance)
    assert (
        trust_violations([_record(0, 3, given), _record(1, 1, given)], governance, WINDOW, 5) == []
    )


def test_an_ungoverned_other_or_unrecorded_store_is_a_violation(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    governance = _governed(box, tmp_path)
    given = StoreReference.of(governance)
    forged = replace(given, digest="0" * 64)
    found = trust_violations(
        [_record(0, 3, given), _record(1, 1.5, None), _record(2, 1, forged)],
        governance,
        WINDOW,
        5,
    )
    assert [(v.code, v.offset) for v in found] == [
        (ViolationCode.TRUST_STORE_NOT_GOVERNED, 1),
        (ViolationCode.TRUST_STORE_MISMATCH, 2),
    ]
    assert "serial 3" in found[1].detail
    assert "replay the period with that store" in found[1].detail
    [unrecorded] = trust_violations([], governance, WINDOW, 1)
    assert unrecorded.code is ViolationCode.TRUST_STORE_NOT_GOVERNED
    assert trust_violations([], governance, WINDOW, 0) == []  # no decision rests on it


def test_a_store_taken_outside_its_validity_window_is_a_violation(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    governance = _governed(box, tmp_path)  # valid from a day ago
    given = StoreReference.of(governance)
    window = Window(NOW - timedelta(days=3), NOW)
    [early] = trust_violations([_record(0, 48, given)], governance, window, 1)
    assert early.code is ViolationCode.TRUST_STORE_MISMATCH
    assert "outside its validity window" in early.detail


def test_a_reference_header_round_trips_and_garbage_is_none() -> None:
    reference = StoreReference(7, "ab" * 32)
    assert StoreReference.parse(reference.value()) == reference
    assert StoreReference.parse(b"7:zz") is None
    assert StoreReference.parse(b"x:" + b"ab" * 32) is None
