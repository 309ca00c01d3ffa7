"""Properties of the policy engine over generated agreement sets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from border_exchange.domain.agreements import AgreementSet, parse_agreement_set
from border_exchange.domain.catalog import SECTIONS, AlertType, HandlingCode, Operation
from border_exchange.domain.policy import (
    Basis,
    Deliver,
    PolicyIndex,
    PolicyInput,
    decide,
    pair_outcome,
)

PARTICIPANTS = ("CAF", "COD", "SSD", "UGA", "UN-MONUSCO")
BASE = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed origin for the generated windows and times: only their offsets from it matter,
and ``decide`` takes the time as an argument (the run's clock never enters)."""

pairs = st.lists(st.sampled_from(PARTICIPANTS), min_size=2, max_size=2, unique=True)
days = st.integers(min_value=0, max_value=40)


@st.composite
def flows(draw: st.DrawFn, parties: list[str]) -> list[dict[str, Any]]:
    """Zero, one or two directions, each with some types, sections and a limit."""
    result = []
    for source, target in ((parties[0], parties[1]), (parties[1], parties[0])):
        if not draw(st.booleans()):
            continue
        types = {}
        for alert_type in draw(st.sets(st.sampled_from(list(AlertType)), min_size=1)):
            sections = draw(
                st.just("all")
                | st.lists(st.sampled_from(SECTIONS[alert_type]), min_size=1, unique=True)
            )
            types[alert_type.value] = {
                "sections": sections,
                "max_handling": draw(st.sampled_from(list(HandlingCode))).value,
            }
        result.append({"from": source, "to": target, "types": types})
    return result


@st.composite
def agreement_documents(draw: st.DrawFn) -> dict[str, Any]:
    """An agreement set as a document (checked or not: the engine must be total)."""
    agreements = []
    for number in range(draw(st.integers(min_value=0, max_value=8))):
        parties = draw(pairs)
        start = draw(days)
        length = draw(st.none() | st.integers(min_value=1, max_value=20))
        agreements.append(
            {
                "id": f"AG-{number}",
                "parties": parties,
                "status": draw(st.sampled_from(["active", "active", "suspended", "terminated"])),
                "effective_from": (BASE + timedelta(days=start)).isoformat(),
                "effective_until": None
                if length is None
                else (BASE + timedelta(days=start + length)).isoformat(),
                "flows": draw(flows(parties)),
            }
        )
    return {"version": "generated", "agreements": agreements}


alerts = st.builds(
    PolicyInput,
    origin=st.sampled_from(PARTICIPANTS),
    alert_type=st.sampled_from(list(AlertType)),
    handling_code=st.sampled_from(list(HandlingCode)),
    operation=st.sampled_from(list(Operation)),
    alert_id=st.just("alert-1"),
)
moments = st.integers(min_value=-2 * 86_400, max_value=65 * 86_400).map(
    lambda seconds: BASE + timedelta(seconds=seconds)
)
histories = st.frozensets(st.sampled_from(PARTICIPANTS))


def _parse(document: dict[str, Any]) -> AgreementSet:
    return parse_agreement_set(json.dumps(document))


def _recipients(
    document: dict[str, Any], alert: PolicyInput, at: datetime, history: frozenset[str]
) -> set[str]:
    index = PolicyIndex.build(_parse(document), PARTICIPANTS)
    return set(decide(alert, at, index, history).recipients)


@settings(max_examples=100, deadline=None)
@given(agreement_documents(), alerts, moments, histories)
def test_no_decision_delivers_a_section_the_agreement_does_not_list(
    document: dict[str, Any], alert: PolicyInput, at: datetime, history: frozenset[str]
) -> None:
    aset = _parse(document)
    decision = decide(alert, at, PolicyIndex.build(aset, PARTICIPANTS), history)
    for recipient, outcome in decision.outcomes.items():
        assert recipient != alert.origin or not outcome.delivered
        if not isinstance(outcome, Deliver):
            continue
        if outcome.basis is Basis.EARLIER_RECIPIENT:
            assert outcome.sections == ()
            assert alert.operation is Operation.CANCEL
            assert recipient in history
            continue
        assert outcome.agreement_id is not None
        agreement = aset.by_id(outcome.agreement_id)
        assert agreement.in_force_window(at)
        flow = agreement.flow(alert.origin, recipient)
        assert flow is not None
        terms = flow.types[alert.alert_type.value]
        assert set(outcome.sections) <= set(terms.sections)
        assert alert.handling_code.rank <= terms.max_handling.rank


@settings(max_examples=100, deadline=None)
@given(agreement_documents(), alerts, moments, histories, st.integers(min_value=0))
def test_removing_an_agreement_never_adds_a_recipient(
    document: dict[str, Any],
    alert: PolicyInput,
    at: datetime,
    history: frozenset[str],
    pick: int,
) -> None:
    agreements = document["agreements"]
    if not agreements:
        return
    fewer = {
        **document,
        "agreements": [a for i, a in enumerate(agreements) if i != pick % len(agreements)],
    }
    assert _recipients(fewer, alert, at, history) <= _recipients(document, alert, at, history)


@settings(max_examples=100, deadline=None)
@given(agreement_documents(), alerts, moments, histories, st.integers(min_value=0))
def test_suspending_an_agreement_never_adds_a_recipient(
    document: dict[str, Any],
    alert: PolicyInput,
    at: datetime,
    history: frozenset[str],
    pick: int,
) -> None:
    agreements = document["agreements"]
    if not agreements:
        return
    chosen = pick % len(agreements)
    suspended = {
        **document,
        "agreements": [
            {**a, "status": "suspended"} if i == chosen else a for i, a in enumerate(agreements)
        ],
    }
    assert _recipients(suspended, alert, at, history) <= _recipients(document, alert, at, history)


@settings(max_examples=100, deadline=None)
@given(agreement_documents(), alerts, moments, histories, st.randoms(use_true_random=False))
def test_the_order_of_agreements_in_the_file_does_not_matter(
    document: dict[str, Any],
    alert: PolicyInput,
    at: datetime,
    history: frozenset[str],
    rng: Any,
) -> None:
    shuffled = list(document["agreements"])
    rng.shuffle(shuffled)
    reordered = _parse({**document, "agreements": shuffled})
    original = _parse(document)
    assert reordered.digest == original.digest
    first = decide(alert, at, PolicyIndex.build(original, PARTICIPANTS), history)
    second = decide(alert, at, PolicyIndex.build(reordered, PARTICIPANTS), history)
    assert first == second


@settings(max_examples=100, deadline=None)
@given(agreement_documents(), alerts, moments)
def test_the_index_agrees_with_evaluating_the_agreements_directly(
    document: dict[str, Any], alert: PolicyInput, at: datetime
) -> None:
    aset = _parse(document)
    decision = decide(alert, at, PolicyIndex.build(aset, PARTICIPANTS))
    if alert.operation is Operation.CANCEL:
        return
    for recipient in PARTICIPANTS:
        if recipient == alert.origin:
            continue
        between = [a for a in aset.agreements if set(a.parties) == {alert.origin, recipient}]
        expected = pair_outcome(
            between, alert.origin, recipient, alert.alert_type, alert.handling_code, at
        )
        assert decision.outcomes[recipient] == expected
