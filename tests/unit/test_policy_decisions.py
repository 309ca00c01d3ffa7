"""The decision table: every reason code, every time boundary, asymmetric flows, the lifecycle.

Time boundaries: ``effective_from`` is inclusive and ``effective_until`` exclusive,
so an agreement for 2026 runs from 2026-01-01T00:00:00Z up to, not including,
2027-01-01T00:00:00Z. The dates are fixed on purpose: these tests are about those
boundaries, ``decide`` takes the time as an argument, and nothing reads the run's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from border_exchange.domain.agreements import parse_agreement_set
from border_exchange.domain.catalog import SECTIONS, AlertType, HandlingCode, Operation
from border_exchange.domain.policy import (
    Basis,
    Deliver,
    Deny,
    DenyReason,
    Outcome,
    PolicyIndex,
    PolicyInput,
    decide,
)
from border_exchange.errors import PolicyError

PARTICIPANTS = ("CAF", "COD", "SSD", "TCD", "UGA", "UN-MINUSCA", "UN-MONUSCO")

AGREEMENTS = """
version: table
agreements:
  - id: COD-CAF-2026
    parties: [COD, CAF]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    effective_until: 2027-01-01T00:00:00Z
    flows:
      - from: COD
        to: CAF
        types:
          WANTED_PERSON: {sections: [offence, identity, documents], max_handling: H2}
      - from: CAF
        to: COD
        types:
          WANTED_PERSON: {sections: all, max_handling: H1}
          VEHICLE_NOTICE: {sections: [vehicle, event], max_handling: H0}
  - id: COD-UGA
    parties: [COD, UGA]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: UGA
        to: COD
        types:
          WANTED_PERSON: {sections: [identity, photo], max_handling: H3}
  - id: COD-MONUSCO
    parties: [COD, UN-MONUSCO]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: COD
        to: UN-MONUSCO
        types:
          WANTED_PERSON: {sections: [identity], max_handling: H3}
  - id: COD-SSD-2027
    parties: [COD, SSD]
    status: active
    effective_from: 2027-01-01T00:00:00Z
    flows:
      - from: COD
        to: SSD
        types:
          WANTED_PERSON: {sections: all, max_handling: H3}
  - id: CAF-TCD
    parties: [CAF, TCD]
    status: terminated
    effective_from: 2026-01-01T00:00:00Z
    effective_until: 2028-01-01T00:00:00Z
    flows:
      - from: CAF
        to: TCD
        types:
          WANTED_PERSON: {sections: all, max_handling: H3}
  - id: SSD-UGA-2026
    parties: [SSD, UGA]
    status: suspended
    effective_from: 2026-01-01T00:00:00Z
    effective_until: 2027-01-01T00:00:00Z
    flows:
      - from: SSD
        to: UGA
        types:
          VEHICLE_NOTICE: {sections: all, max_handling: H3}
  - id: SSD-UGA-2027
    parties: [UGA, SSD]
    status: active
    effective_from: 2027-01-01T00:00:00Z
    flows:
      - from: SSD
        to: UGA
        types:
          VEHICLE_NOTICE: {sections: [vehicle], max_handling: H3}
  - id: CAF-MINUSCA-2025
    parties: [CAF, UN-MINUSCA]
    status: active
    effective_from: 2025-01-01T00:00:00Z
    effective_until: 2026-01-01T00:00:00Z
    flows:
      - from: CAF
        to: UN-MINUSCA
        types:
          BORDER_INCIDENT: {sections: all, max_handling: H3}
  - id: CAF-MINUSCA-2026B
    parties: [CAF, UN-MINUSCA]
    status: active
    effective_from: 2026-07-01T00:00:00Z
    flows:
      - from: CAF
        to: UN-MINUSCA
        types:
          BORDER_INCIDENT: {sections: [incident, location], max_handling: H3}
"""

ASET = parse_agreement_set(AGREEMENTS)
INDEX = PolicyIndex.build(ASET, PARTICIPANTS)

START_2026 = datetime(2026, 1, 1, tzinfo=UTC)
START_2027 = datetime(2027, 1, 1, tzinfo=UTC)
MID_2026 = datetime(2026, 6, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)

WP = AlertType.WANTED_PERSON
VN = AlertType.VEHICLE_NOTICE
BI = AlertType.BORDER_INCIDENT
H0, H1, H2, H3 = HandlingCode.H0, HandlingCode.H1, HandlingCode.H2, HandlingCode.H3
COD_TO_CAF = ("identity", "documents", "offence")


def _alert(
    origin: str,
    alert_type: AlertType,
    handling: HandlingCode = H0,
    operation: Operation = Operation.CREATE,
) -> PolicyInput:
    return PolicyInput(origin, alert_type, handling, operation, alert_id="alert-1")


def _outcome(
    origin: str, recipient: str, alert_type: AlertType, handling: HandlingCode, at: datetime
) -> Outcome:
    return decide(_alert(origin, alert_type, handling), at, INDEX).outcomes[recipient]


# fmt: off
# (case, origin, recipient, type, handling, at, expected: sections tuple or deny reason, agreement)
Expected = DenyReason | tuple[str, ...]

CASES: list[tuple[str, str, str, AlertType, HandlingCode, datetime, Expected, str | None]] = [
    # time boundaries of COD-CAF-2026: from inclusive, until exclusive
    ("one tick before from", "COD", "CAF", WP, H0, START_2026 - TICK,
     DenyReason.NOT_YET_IN_FORCE, "COD-CAF-2026"),
    ("exactly at from", "COD", "CAF", WP, H0, START_2026, COD_TO_CAF, "COD-CAF-2026"),
    ("one tick before until", "COD", "CAF", WP, H0, START_2027 - TICK, COD_TO_CAF,
     "COD-CAF-2026"),
    ("exactly at until", "COD", "CAF", WP, H0, START_2027, DenyReason.EXPIRED, "COD-CAF-2026"),
    # handling codes: up to the limit inclusive
    ("handling at the limit", "COD", "CAF", WP, H2, MID_2026, COD_TO_CAF, "COD-CAF-2026"),
    ("handling above the limit", "COD", "CAF", WP, H3, MID_2026,
     DenyReason.HANDLING_ABOVE_LIMIT, "COD-CAF-2026"),
    # asymmetric flows
    ("the other direction has its own limit", "CAF", "COD", WP, H2, MID_2026,
     DenyReason.HANDLING_ABOVE_LIMIT, "COD-CAF-2026"),
    ("the other direction has its own sections", "CAF", "COD", WP, H1, MID_2026,
     SECTIONS[WP], "COD-CAF-2026"),
    ("a type flows one way only", "CAF", "COD", VN, H0, MID_2026, ("vehicle", "event"),
     "COD-CAF-2026"),
    ("type not listed in this direction", "COD", "CAF", VN, H0, MID_2026,
     DenyReason.TYPE_NOT_COVERED, "COD-CAF-2026"),
    ("direction absent: nothing flows", "COD", "UGA", WP, H0, MID_2026,
     DenyReason.TYPE_NOT_COVERED, "COD-UGA"),
    ("direction present", "UGA", "COD", WP, H3, MID_2026, ("identity", "photo"), "COD-UGA"),
    ("type not covered at all", "COD", "UGA", BI, H0, MID_2026,
     DenyReason.TYPE_NOT_COVERED, "COD-UGA"),
    # the other reasons
    ("no agreement", "COD", "TCD", WP, H0, MID_2026, DenyReason.NO_AGREEMENT, None),
    ("origin never receives its own alert", "COD", "COD", WP, H0, MID_2026,
     DenyReason.ORIGIN, None),
    ("not yet in force", "COD", "SSD", WP, H0, MID_2026, DenyReason.NOT_YET_IN_FORCE,
     "COD-SSD-2027"),
    ("in force from its first instant", "COD", "SSD", WP, H3, START_2027, SECTIONS[WP],
     "COD-SSD-2027"),
    ("terminated, though inside its window", "CAF", "TCD", WP, H0, MID_2026,
     DenyReason.TERMINATED, "CAF-TCD"),
    ("terminated, before its window", "CAF", "TCD", WP, H0, START_2026 - TICK,
     DenyReason.TERMINATED, "CAF-TCD"),
    ("suspended", "SSD", "UGA", VN, H0, MID_2026, DenyReason.SUSPENDED, "SSD-UGA-2026"),
    ("suspended until its end, exclusive", "SSD", "UGA", VN, H0, START_2027 - TICK,
     DenyReason.SUSPENDED, "SSD-UGA-2026"),
    ("the successor takes over at the boundary", "SSD", "UGA", VN, H0, START_2027,
     ("vehicle",), "SSD-UGA-2027"),
    ("before both: the soonest to start explains", "SSD", "UGA", VN, H0, START_2026 - TICK,
     DenyReason.NOT_YET_IN_FORCE, "SSD-UGA-2026"),
    ("the expired predecessor delivers in its window", "CAF", "UN-MINUSCA", BI, H3,
     datetime(2025, 6, 1, tzinfo=UTC), SECTIONS[BI], "CAF-MINUSCA-2025"),
    ("between two agreements: not yet in force wins over expired", "CAF", "UN-MINUSCA", BI, H0,
     MID_2026, DenyReason.NOT_YET_IN_FORCE, "CAF-MINUSCA-2026B"),
    ("expired and no successor", "COD", "CAF", WP, H0, datetime(2030, 1, 1, tzinfo=UTC),
     DenyReason.EXPIRED, "COD-CAF-2026"),
]
# fmt: on


@pytest.mark.parametrize(
    ("origin", "recipient", "alert_type", "handling", "at", "expected", "agreement_id"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_decision_table(
    origin: str,
    recipient: str,
    alert_type: AlertType,
    handling: HandlingCode,
    at: datetime,
    expected: Expected,
    agreement_id: str | None,
) -> None:
    outcome = _outcome(origin, recipient, alert_type, handling, at)
    if isinstance(expected, DenyReason):
        assert isinstance(outcome, Deny), outcome
        assert outcome.reason is expected
    else:
        assert outcome == Deliver(expected, agreement_id)
    assert outcome.agreement_id == agreement_id


def test_the_table_covers_every_agreement_reason() -> None:
    lifecycle_only = {
        DenyReason.NO_EARLIER_VERSION,
        DenyReason.NOT_PREVIOUS_RECIPIENT,
        DenyReason.UNKNOWN_PARTICIPANT,
    }
    # This table compiles terms alone; signatures decide NOT_SIGNED (test_agreement_consent).
    signatures_only = {DenyReason.NOT_SIGNED}
    covered = {case[6] for case in CASES if isinstance(case[6], DenyReason)}
    assert covered == set(DenyReason) - lifecycle_only - signatures_only


def test_a_decision_covers_every_participant_and_records_the_set() -> None:
    decision = decide(_alert("COD", WP), MID_2026, INDEX)
    assert set(decision.outcomes) == set(PARTICIPANTS)
    assert decision.agreement_set == ASET.digest
    assert decision.label == "table"
    assert decision.at == MID_2026
    assert decision.recipients == ("CAF", "UN-MONUSCO")


def test_decisions_at_other_time_zones_compare_as_instants() -> None:
    kinshasa = START_2026.astimezone(ZoneInfo("Africa/Kinshasa"))
    assert _outcome("COD", "CAF", WP, H0, kinshasa) == Deliver(COD_TO_CAF, "COD-CAF-2026")


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(PolicyError, match="time zone"):
        decide(_alert("COD", WP), datetime(2026, 6, 1), INDEX)


def test_an_unknown_origin_reaches_no_one() -> None:
    decision = decide(_alert("XYZ", WP), MID_2026, INDEX)
    assert decision.recipients == ()
    assert {o.reason for o in decision.outcomes.values() if isinstance(o, Deny)} == {
        DenyReason.UNKNOWN_PARTICIPANT
    }


# --- lifecycle -------------------------------------------------------------------------------


def test_an_update_goes_to_partners_still_permitted_and_new_ones() -> None:
    decision = decide(
        _alert("COD", WP, H2, Operation.UPDATE), MID_2026, INDEX, history={"CAF", "UGA"}
    )
    assert decision.outcomes["CAF"] == Deliver(COD_TO_CAF, "COD-CAF-2026")
    # not an earlier recipient, permitted now: this update is the first version it sees
    assert decision.outcomes["UN-MONUSCO"] == Deliver(("identity",), "COD-MONUSCO")
    uga = decision.outcomes["UGA"]
    assert isinstance(uga, Deny)
    assert uga.reason is DenyReason.TYPE_NOT_COVERED
    assert "keeps the earlier version" in uga.detail


def test_an_update_above_the_limit_leaves_the_earlier_recipient_its_earlier_version() -> None:
    decision = decide(_alert("COD", WP, H3, Operation.UPDATE), MID_2026, INDEX, history={"CAF"})
    caf = decision.outcomes["CAF"]
    assert isinstance(caf, Deny)
    assert caf.reason is DenyReason.HANDLING_ABOVE_LIMIT
    assert "keeps the earlier version until a cancel" in caf.detail
    assert decision.recipients == ("UN-MONUSCO",)


def test_an_update_after_expiry_is_denied_to_the_earlier_recipient() -> None:
    decision = decide(_alert("COD", WP, H0, Operation.UPDATE), START_2027, INDEX, history={"CAF"})
    caf = decision.outcomes["CAF"]
    assert isinstance(caf, Deny)
    assert caf.reason is DenyReason.EXPIRED


def test_an_update_with_no_history_is_decided_like_a_create() -> None:
    update = decide(_alert("COD", WP, H1, Operation.UPDATE), MID_2026, INDEX)
    create = decide(_alert("COD", WP, H1, Operation.CREATE), MID_2026, INDEX)
    assert update.outcomes == create.outcomes
    assert update.recipients == ("CAF", "UN-MONUSCO")


def test_an_update_for_an_earlier_recipient_no_longer_a_participant_is_denied() -> None:
    decision = decide(_alert("COD", WP, H0, Operation.UPDATE), MID_2026, INDEX, history={"CMR"})
    cmr = decision.outcomes["CMR"]
    assert isinstance(cmr, Deny)
    assert cmr.reason is DenyReason.UNKNOWN_PARTICIPANT


def test_a_cancel_reaches_every_earlier_recipient_whatever_the_agreements_say() -> None:
    after_expiry = datetime(2028, 1, 1, tzinfo=UTC)
    decision = decide(
        _alert("COD", WP, H3, Operation.CANCEL),
        after_expiry,
        INDEX,
        history={"CAF", "UN-MONUSCO", "CMR"},
    )
    assert decision.outcomes["CAF"] == Deliver((), None, Basis.EARLIER_RECIPIENT)
    assert decision.outcomes["CMR"] == Deliver((), None, Basis.EARLIER_RECIPIENT)
    # still permitted for this handling code: the agreement is recorded
    assert decision.outcomes["UN-MONUSCO"] == Deliver((), "COD-MONUSCO", Basis.EARLIER_RECIPIENT)
    assert decision.recipients == ("CAF", "UN-MONUSCO", "CMR")
    for name in ("SSD", "TCD", "UGA", "UN-MINUSCA"):
        outcome = decision.outcomes[name]
        assert isinstance(outcome, Deny)
        assert outcome.reason is DenyReason.NOT_PREVIOUS_RECIPIENT
    assert decision.outcomes["COD"] == Deny(
        DenyReason.ORIGIN, None, "COD is the origin; never delivered back"
    )


def test_a_cancel_goes_to_no_one_else_even_where_permitted() -> None:
    decision = decide(_alert("COD", WP, H0, Operation.CANCEL), MID_2026, INDEX, history={"CAF"})
    assert decision.recipients == ("CAF",)
    monusco = decision.outcomes["UN-MONUSCO"]
    assert isinstance(monusco, Deny)
    assert monusco.reason is DenyReason.NOT_PREVIOUS_RECIPIENT


def test_a_cancel_with_no_history_withdraws_nothing() -> None:
    decision = decide(_alert("COD", WP, H0, Operation.CANCEL), MID_2026, INDEX)
    assert decision.recipients == ()
    reasons = {name: o.reason for name, o in decision.outcomes.items() if isinstance(o, Deny)}
    assert reasons.pop("COD") is DenyReason.ORIGIN
    assert set(reasons.values()) == {DenyReason.NO_EARLIER_VERSION}


def test_the_origin_in_its_own_history_is_never_delivered_to() -> None:
    for operation in Operation:
        decision = decide(_alert("COD", WP, H0, operation), MID_2026, INDEX, history={"COD"})
        assert "COD" not in decision.recipients
    cancel = decide(_alert("COD", WP, H0, Operation.CANCEL), MID_2026, INDEX, history={"COD"})
    assert cancel.outcomes["CAF"] == Deny(
        DenyReason.NO_EARLIER_VERSION,
        None,
        "no earlier version of this alert was delivered to anyone; nothing to withdraw",
    )


def test_a_create_ignores_history() -> None:
    with_history = decide(_alert("COD", WP, H3), MID_2026, INDEX, history={"CAF"})
    assert with_history.outcomes == decide(_alert("COD", WP, H3), MID_2026, INDEX).outcomes
