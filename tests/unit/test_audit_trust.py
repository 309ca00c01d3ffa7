"""The auditor checks that the router routed under the governed store it was given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from border_exchange.adapters.trust_file import read_governed
from border_exchange.demo.sandbox import Sandbox
from border_exchange.domain.audit_trust import in_force, store_timeline, trust_violations
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
THREE = ("CAF", "COD", "SSD")


def _governed(
    sandbox: Sandbox,
    path: Path,
    names: Sequence[str] = THREE,
    serial: int = 3,
    approvers: Sequence[str] = THREE,
    until: datetime | None = None,
) -> GovernedStore:
    _write(
        path,
        _members(sandbox, names),
        serial,
        _keys(sandbox, names),
        _keys(sandbox, approvers),
        until=until,
    )
    return read_governed(path)


def _record(
    offset: int, hours_ago: float, reference: StoreReference | None, key: bytes = b"set"
) -> LogRecord:
    headers = () if reference is None else ((TRUST_STORE_HEADER, reference.value()),)
    return LogRecord(
        AGREEMENTS_TOPIC, 0, offset, NOW - timedelta(hours=hours_ago), b"", key, headers
    )


def _ago(*hours: float) -> list[datetime]:
    return [NOW - timedelta(hours=h) for h in hours]


def test_the_stores_in_force_are_the_last_before_the_window_and_those_inside() -> None:
    records = [_record(0, 5, None), _record(1, 3, None), _record(2, 1, None), _record(3, -1, None)]
    assert [r.offset for r in in_force(records, WINDOW)] == [1, 2]


def test_decisions_under_the_given_governed_store_are_clean(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    governance = _governed(box, tmp_path / "trust.yaml")
    given = StoreReference.of(governance)
    records = [_record(0, 3, given), _record(1, 1, given)]
    assert trust_violations(records, [governance], WINDOW, _ago(1.5, 0.5), {"set"}) == []


def test_an_ungoverned_other_or_unrecorded_store_is_a_violation(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    governance = _governed(box, tmp_path / "trust.yaml")
    given = StoreReference.of(governance)
    forged = replace(given, digest="0" * 64)
    found = trust_violations(
        [_record(0, 3, given), _record(1, 1.5, None), _record(2, 1, forged)],
        [governance],
        WINDOW,
        _ago(1.8, 1.2, 0.5),
    )
    assert [(v.code, v.offset) for v in found] == [
        (ViolationCode.TRUST_STORE_NOT_GOVERNED, 1),
        (ViolationCode.TRUST_STORE_MISMATCH, 2),
    ]
    assert "serial 3" in found[1].detail
    assert "give that store too" in found[1].detail
    [unrecorded] = trust_violations([], [governance], WINDOW, _ago(1))
    assert unrecorded.code is ViolationCode.TRUST_STORE_NOT_GOVERNED
    assert trust_violations([], [governance], WINDOW, []) == []  # no decision rests on it


def test_a_store_taken_outside_its_validity_window_is_a_violation(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    governance = _governed(box, tmp_path / "trust.yaml")  # valid from a day ago
    given = StoreReference.of(governance)
    window = Window(NOW - timedelta(days=3), NOW)
    [early] = trust_violations([_record(0, 48, given)], [governance], window, _ago(47))
    assert early.code is ViolationCode.TRUST_STORE_MISMATCH
    assert "outside its validity window" in early.detail


def test_a_store_change_inside_the_window_is_checked_and_each_record_under_its_store(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    first = _governed(box, tmp_path / "1.yaml", serial=1)
    four = (*THREE, "UGA")
    # UGA admitted with the approval of two of the three: a majority of the store in force.
    second = _governed(box, tmp_path / "2.yaml", four, 2, ("CAF", "COD", "UGA"))
    records = [_record(0, 3, StoreReference.of(first)), _record(1, 1, StoreReference.of(second))]

    assert trust_violations(records, [first, second], WINDOW, _ago(1.5, 0.5), {"set"}) == []
    timeline = store_timeline(records, [first, second])
    assert "UGA" not in timeline.at(NOW - timedelta(hours=1.5)).participants
    assert "UGA" in timeline.at(NOW - timedelta(hours=0.5)).participants
    # Given the second store alone, the store in force before it is not among those given.
    [missing] = trust_violations(records, [second], WINDOW, _ago(1.5, 0.5), {"set"})
    assert missing.code is ViolationCode.TRUST_STORE_MISMATCH
    assert missing.offset == 0


def test_a_change_the_governance_rules_refuse_is_a_violation_naming_why(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    first = _governed(box, tmp_path / "1.yaml", serial=1)
    four = (*THREE, "UGA")
    # The hub operator admits UGA with UGA's approval and CAF's: 1 of the 3 in force.
    under = _governed(box, tmp_path / "2.yaml", four, 2, ("CAF", "UGA"))
    records = [_record(0, 3, StoreReference.of(first)), _record(1, 1, StoreReference.of(under))]

    [refused] = trust_violations(records, [first, under], WINDOW, _ago(0.5), {"set"})

    assert refused.code is ViolationCode.TRUST_STORE_NOT_ACCEPTED
    assert refused.offset == 1
    assert "in place of serial 1" in refused.detail
    assert "needs the approval of 2 of the 3 active participants" in refused.detail


def test_decisions_after_the_store_in_force_expired_are_a_violation(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    short = _governed(box, tmp_path / "trust.yaml", until=NOW - timedelta(hours=1))
    records = [_record(0, 3, StoreReference.of(short))]

    [late] = trust_violations(records, [short], WINDOW, _ago(1.5, 0.9, 0.5), {"set"})

    assert late.code is ViolationCode.TRUST_STORE_EXPIRED
    assert late.detail.startswith("2 decision(s) made after trust store serial 3")


def test_records_of_agreement_sets_no_decision_names_are_not_looked_at(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    governance = _governed(box, tmp_path / "trust.yaml")
    given = StoreReference.of(governance)
    # Another deployment's set on the same topic, under a store this auditor was not given.
    records = [_record(0, 3, given), _record(1, 1, None, key=b"other")]
    assert trust_violations(records, [governance], WINDOW, _ago(0.5), {"set"}) == []
    assert len(trust_violations(records, [governance], WINDOW, _ago(0.5))) == 1


def test_a_reference_header_round_trips_and_garbage_is_none() -> None:
    reference = StoreReference(7, "ab" * 32)
    assert StoreReference.parse(reference.value()) == reference
    assert StoreReference.parse(b"7:zz") is None
    assert StoreReference.parse(b"x:" + b"ab" * 32) is None
