"""Re-deciding recorded decisions under the agreement set each names, to compare them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from border_exchange.domain.agreements import AgreementSet
from border_exchange.domain.audit import outcome_entries
from border_exchange.domain.catalog import ActionOnHit, AlertType, HandlingCode, Operation
from border_exchange.domain.consent import Consent, consents
from border_exchange.domain.memo import PerObject
from border_exchange.domain.policy import Deliver, Outcome, PolicyIndex, PolicyInput, decide
from border_exchange.domain.trust import TrustStore
from border_exchange.domain.trust_timeline import TrustTimeline, as_timeline


def _outcome_key(
    outcome: Outcome,
) -> tuple[bool, tuple[str, ...], str | None, str | None, str | None]:
    if isinstance(outcome, Deliver):
        return (True, outcome.sections, None, outcome.agreement_id, outcome.basis.value)
    return (False, (), outcome.reason.value, outcome.agreement_id, None)


def _recorded_key(
    outcome: Mapping[str, Any],
) -> tuple[bool, tuple[str, ...], str | None, str | None, str | None]:
    if outcome["delivered"]:
        return (True, tuple(outcome["sections"]), None, outcome["agreement_id"], outcome["basis"])
    return (False, (), outcome["reason"], outcome["agreement_id"], None)


def _describe(key: tuple[bool, tuple[str, ...], str | None, str | None, str | None]) -> str:
    delivered, sections, reason, agreement, basis = key
    if delivered:
        return f"deliver [{', '.join(sections)}] under {agreement} ({basis})"
    return f"deny {reason}" + (f" under {agreement}" if agreement else "")


_TYPES: Final = {member.value: member for member in AlertType}
_HANDLING: Final = {member.value: member for member in HandlingCode}
_OPERATIONS: Final = {member.value: member for member in Operation}
_ACTIONS: Final = {member.value: member for member in ActionOnHit}


def policy_input(record: Mapping[str, Any]) -> PolicyInput:
    """The policy's view of the message an audit DECISION describes; ValueError when malformed."""
    alert_type = _TYPES.get(record["alert_type"])
    handling = _HANDLING.get(record["handling_code"])
    operation = _OPERATIONS.get(record["operation"])
    action = record.get("action_on_hit")
    on_hit = None if action is None else _ACTIONS.get(action)
    if (
        alert_type is None
        or handling is None
        or operation is None
        or (on_hit is None) != (action is None)
    ):  # the enum constructors name the value that is not a code
        alert_type = AlertType(record["alert_type"])
        handling = HandlingCode(record["handling_code"])
        operation = Operation(record["operation"])
        on_hit = None if action is None else ActionOnHit(action)
    return PolicyInput(
        origin=str(record["origin"]),
        alert_type=alert_type,
        handling_code=handling,
        operation=operation,
        alert_id=str(record["alert_id"]),
        action_on_hit=on_hit,
    )


_AS_RECORDED_KEPT: Final = 4096


class Reevaluator:
    """Re-decides recorded decisions under their recorded agreement sets; indexes are cached."""

    def __init__(
        self, agreement_sets: Mapping[str, AgreementSet], trust: TrustStore | TrustTimeline
    ) -> None:
        self.agreement_sets = agreement_sets
        self.trust = as_timeline(trust)
        """The trust store in force at each time: a decision's agreements are established
        by their parties' signatures under the store in force when it was made."""
        self._consents: dict[tuple[str, int], Mapping[str, Consent]] = {}
        self._indexes: dict[tuple[str, frozenset[str], int], PolicyIndex] = {}
        self._as_recorded = PerObject[Mapping[str, Outcome], list[dict[str, Any]]](
            outcome_entries, _AS_RECORDED_KEPT
        )
        self._inputs: dict[tuple[Any, ...], PolicyInput] = {}
        self._decided: dict[tuple[Any, ...], tuple[PolicyIndex, object, Mapping[str, Outcome]]] = {}

    def differences(self, record: Mapping[str, Any]) -> list[str] | None:
        """How the recorded outcomes differ from a re-evaluation; None when the set is unknown."""
        digest = record.get("agreement_set")
        aset = self.agreement_sets.get(str(digest))
        if aset is None:
            return None
        listed = record["outcomes"]
        names = frozenset([str(o["participant"]) for o in listed])
        store = self._store(record)
        index = self._indexes.get((aset.digest, names, id(store)))
        if index is None:
            index = self._indexes[(aset.digest, names, id(store))] = PolicyIndex.build(
                aset, names, self.consent(aset, store)
            )
        outcomes = self._outcomes(record, index)
        if listed == self._recorded_form(outcomes):
            return []
        recorded = {str(o["participant"]): _recorded_key(o) for o in listed}
        return self._compare(outcomes, recorded)

    def _store(self, record: Mapping[str, Any]) -> TrustStore:
        """The trust store in force when the decision ``record`` was made."""
        at = record.get("recorded_at")
        return self.trust.at(at) if isinstance(at, datetime) else self.trust.first

    def consent(self, aset: AgreementSet, store: TrustStore | None = None) -> Mapping[str, Consent]:
        """What the parties' signatures establish of each agreement of ``aset`` under ``store``
        (default: the first in force; cached)."""
        store = self.trust.first if store is None else store
        found = self._consents.get((aset.digest, id(store)))
        if found is None:
            found = self._consents[(aset.digest, id(store))] = consents(aset, store)
        return found

    def unsigned_deliveries(self, record: Mapping[str, Any]) -> list[str]:
        """The deliveries of a decision that rest on an agreement both parties had not signed."""
        aset = self.agreement_sets.get(str(record.get("agreement_set")))
        if aset is None:
            return []
        consent = self.consent(aset, self._store(record))
        problems = []
        for outcome in record.get("outcomes") or ():
            agreement_id = outcome.get("agreement_id")
            if not outcome.get("delivered") or outcome.get("basis") != "AGREEMENT":
                continue
            granted = consent.get(str(agreement_id))
            if granted is None or not granted.signed_by_both:
                why = (
                    f"the set has no agreement {agreement_id}"
                    if granted is None
                    else granted.not_signed_detail()
                )
                problems.append(f"delivered to {outcome['participant']}: {why}")
        return problems

    def _outcomes(self, record: Mapping[str, Any], index: PolicyIndex) -> Mapping[str, Outcome]:
        """The outcomes ``decide`` gives for the message and history ``record`` describes.

        ``decide`` takes the time only through ``index.template`` (the agreements'
        outcomes for the origin, type and handling code in one time segment, a shared
        mapping) and then applies the lifecycle rules of the operation to the earlier
        recipients; the alert id does not enter it. So decisions alike in origin, type,
        handling code, operation, action on hit, template and earlier recipients are
        decided once per replay (the tests hold ``decide`` to this). The codes were
        checked by ``policy_input`` when the first of them was decided.
        """
        raw = (
            record["origin"],
            record["alert_type"],
            record["handling_code"],
            record["operation"],
            record.get("action_on_hit"),
        )
        at = record["recorded_at"]
        earlier = record["earlier_recipients"]
        if at.tzinfo is None:  # decide says why not
            return decide(policy_input(record), at, index, earlier).outcomes
        alert = self._inputs.get(raw)
        if alert is None:
            alert = self._inputs[raw] = policy_input(record)
        template = index.template(alert, at)  # reads the origin, type and handling code only
        key = (id(index), raw, id(template), tuple(earlier))
        known = self._decided.get(key)
        if known is not None and known[0] is index and known[1] is template:
            return known[2]
        outcomes = decide(policy_input(record), at, index, earlier).outcomes
        if len(self._decided) >= _AS_RECORDED_KEPT:
            self._decided.clear()
        self._decided[key] = (index, template, outcomes)
        return outcomes

    def _recorded_form(self, outcomes: Mapping[str, Outcome]) -> list[dict[str, Any]]:
        """The outcome list a faithful audit record holds for ``outcomes``, in its order.

        A recorded list equal to it compares equal outcome by outcome, so equality alone
        clears a decision; any other list is compared field by field (``_compare``), which
        states the differences or finds none. Decisions without history share their
        outcome mapping (one per time segment and handling code): the list is built once
        per shared mapping, and kept with it so that its id is not reused meanwhile.
        """
        return self._as_recorded(outcomes)  # what the router writes (``decision_record``)

    @staticmethod
    def _compare(
        outcomes: Mapping[str, Outcome],
        recorded: Mapping[str, tuple[bool, tuple[str, ...], str | None, str | None, str | None]],
    ) -> list[str]:
        problems = []
        for name, outcome in outcomes.items():
            again = _outcome_key(outcome)
            was = recorded.get(name)
            if was != again:
                was_text = "nothing" if was is None else _describe(was)
                problems.append(f"{name}: recorded {was_text}, re-evaluated {_describe(again)}")
        return problems
