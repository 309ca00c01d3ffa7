"""The policy engine: who receives an alert, and which of its sections, under an agreement set.

``PolicyIndex.build`` is run once per agreement-set version. For every (origin,
alert type) it cuts time at every start and end of the agreements the origin
is party to; between two cuts nothing changes, so it precomputes, per time
segment and per handling rank, the outcome for every participant. ``decide``
then only bisects the time, picks the precomputed outcomes and overlays the
lifecycle rules (updates and cancels) on the alert's distribution history.

Default deny: a participant receives an alert only when an agreement in force,
active, lists the type in the origin-to-participant direction and allows the
alert's handling code. Nothing is ever delivered back to the origin.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from border_exchange.domain.agreements import Agreement, AgreementSet, AgreementStatus
from border_exchange.domain.catalog import (
    SECTIONS,
    ActionOnHit,
    AlertType,
    HandlingCode,
    Operation,
)
from border_exchange.domain.times import iso
from border_exchange.errors import PolicyError

if TYPE_CHECKING:
    from border_exchange.domain.consent import Consent


class DenyReason(StrEnum):
    """Why a participant does not receive an alert."""

    NO_AGREEMENT = "NO_AGREEMENT"
    NOT_YET_IN_FORCE = "NOT_YET_IN_FORCE"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"
    TERMINATED = "TERMINATED"
    TYPE_NOT_COVERED = "TYPE_NOT_COVERED"
    HANDLING_ABOVE_LIMIT = "HANDLING_ABOVE_LIMIT"
    ORIGIN = "ORIGIN"
    NO_EARLIER_VERSION = "NO_EARLIER_VERSION"
    NOT_PREVIOUS_RECIPIENT = "NOT_PREVIOUS_RECIPIENT"
    UNKNOWN_PARTICIPANT = "UNKNOWN_PARTICIPANT"
    NOT_SIGNED = "NOT_SIGNED"


class Basis(StrEnum):
    """The rule a delivery rests on."""

    AGREEMENT = "AGREEMENT"
    EARLIER_RECIPIENT = "EARLIER_RECIPIENT"


@dataclass(frozen=True, slots=True)
class Deliver:
    """Deliver the alert keeping ``sections`` (canonical order); the others are redacted."""

    sections: tuple[str, ...]
    agreement_id: str | None
    basis: Basis = Basis.AGREEMENT

    @property
    def delivered(self) -> bool:
        """True: this outcome delivers."""
        return True


@dataclass(frozen=True, slots=True)
class Deny:
    """Do not deliver, for ``reason``; ``agreement_id`` is the agreement that decided, if any."""

    reason: DenyReason
    agreement_id: str | None
    detail: str

    @property
    def delivered(self) -> bool:
        """False: this outcome withholds the alert."""
        return False


Outcome = Deliver | Deny


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """What the policy needs of an alert: its header fields that decide where it goes."""

    origin: str
    alert_type: AlertType
    handling_code: HandlingCode
    operation: Operation
    alert_id: str
    action_on_hit: ActionOnHit | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for every participant, and the agreement set (digest and label) that decided."""

    agreement_set: str
    at: datetime
    outcomes: Mapping[str, Outcome]
    label: str = ""

    @property
    def recipients(self) -> tuple[str, ...]:
        """The participants the alert is delivered to, in participant order."""
        return tuple(name for name, outcome in self.outcomes.items() if outcome.delivered)


_DENY_PRECEDENCE: Final[Mapping[DenyReason, int]] = MappingProxyType(
    {
        DenyReason.HANDLING_ABOVE_LIMIT: 1,
        DenyReason.TYPE_NOT_COVERED: 2,
        DenyReason.SUSPENDED: 3,
        DenyReason.NOT_SIGNED: 4,
        DenyReason.NOT_YET_IN_FORCE: 5,
        DenyReason.EXPIRED: 6,
        DenyReason.TERMINATED: 7,
    }
)
"""Among several agreements for a pair, the outcome nearest to delivering wins (Deliver is 0)."""

_RANK_OF: Final[Mapping[HandlingCode, int]] = MappingProxyType(
    {code: code.rank for code in HandlingCode}
)

_KEEPS_EARLIER: Final = "; an earlier recipient, it keeps the earlier version until a cancel"


def _agreement_outcome(
    agreement: Agreement,
    origin: str,
    recipient: str,
    alert_type: AlertType,
    rank: int,
    at: datetime,
    unsigned: Mapping[str, str],
) -> Outcome:
    """What ``agreement`` alone says about an alert from ``origin`` to ``recipient`` at ``at``."""
    aid = agreement.id
    if agreement.id in unsigned:
        return Deny(DenyReason.NOT_SIGNED, aid, unsigned[agreement.id])
    if agreement.status is AgreementStatus.TERMINATED:
        return Deny(DenyReason.TERMINATED, aid, f"agreement {aid} has been terminated")
    if at < agreement.effective_from:
        return Deny(
            DenyReason.NOT_YET_IN_FORCE,
            aid,
            f"agreement {aid} is in force from {iso(agreement.effective_from)}",
        )
    until = agreement.effective_until
    if until is not None and at >= until:
        return Deny(DenyReason.EXPIRED, aid, f"agreement {aid} expired at {iso(until)}")
    if agreement.status is AgreementStatus.SUSPENDED:
        return Deny(DenyReason.SUSPENDED, aid, f"agreement {aid} is suspended")
    flow = agreement.flow(origin, recipient)
    terms = None if flow is None else flow.types.get(alert_type.value)
    if terms is None:
        return Deny(
            DenyReason.TYPE_NOT_COVERED,
            aid,
            f"agreement {aid} lets no {alert_type} flow from {origin} to {recipient}",
        )
    if rank > _RANK_OF[terms.max_handling]:
        return Deny(
            DenyReason.HANDLING_ABOVE_LIMIT,
            aid,
            f"handling H{rank} is above the limit {terms.max_handling} of agreement {aid} "
            f"for {alert_type} from {origin} to {recipient}",
        )
    listed = set(SECTIONS[alert_type]) if isinstance(terms.sections, str) else set(terms.sections)
    return Deliver(tuple(name for name in SECTIONS[alert_type] if name in listed), aid)


def _precedence(outcome: Outcome, agreement: Agreement) -> tuple[int, float, str]:
    if isinstance(outcome, Deliver):
        return (0, 0.0, agreement.id)
    if outcome.reason is DenyReason.NOT_YET_IN_FORCE:  # the soonest to start
        return (
            _DENY_PRECEDENCE[outcome.reason],
            agreement.effective_from.timestamp(),
            agreement.id,
        )
    if outcome.reason is DenyReason.EXPIRED and agreement.effective_until is not None:
        return (
            _DENY_PRECEDENCE[outcome.reason],
            -agreement.effective_until.timestamp(),
            agreement.id,
        )
    return (_DENY_PRECEDENCE[outcome.reason], 0.0, agreement.id)


def pair_outcome(
    agreements: Iterable[Agreement],
    origin: str,
    recipient: str,
    alert_type: AlertType,
    handling_code: HandlingCode,
    at: datetime,
    unsigned: Mapping[str, str] = MappingProxyType({}),
) -> Outcome:
    """The outcome for one pair, from the agreements between them (any order, same result).

    ``unsigned`` maps the id of every agreement not signed by both parties to why: it
    decides nothing but NOT_SIGNED.
    """
    best: tuple[tuple[int, float, str], Outcome] | None = None
    for agreement in agreements:
        outcome = _agreement_outcome(
            agreement, origin, recipient, alert_type, _RANK_OF[handling_code], at, unsigned
        )
        key = _precedence(outcome, agreement)
        if best is None or key < best[0]:
            best = (key, outcome)
    if best is None:
        return Deny(DenyReason.NO_AGREEMENT, None, f"no agreement between {origin} and {recipient}")
    return best[1]


_Template = MappingProxyType[str, Outcome]
"""A read-only outcome per participant; ``.copy()`` is a fast dict copy for overlays."""


def _cuts_of(agreements: Iterable[Agreement]) -> set[datetime]:
    """Every instant at which one of ``agreements`` starts or ends."""
    cuts: set[datetime] = set()
    for agreement in agreements:
        cuts.add(agreement.effective_from)
        if agreement.effective_until is not None:
            cuts.add(agreement.effective_until)
    return cuts


@dataclass(frozen=True, slots=True)
class _Table:
    """Per (origin, type): the time cuts and, per segment and handling rank, every outcome."""

    cuts: tuple[datetime, ...]
    segments: tuple[tuple[_Template, ...], ...]


_RANKS: Final = tuple(sorted(HandlingCode, key=lambda code: code.rank))


def _all_denied(
    origin: str,
    own: Deny,
    names: Iterable[str],
    reason: DenyReason,
    detail: Callable[[str], str],
) -> _Template:
    """Every participant denied for ``reason`` with ``detail`` of its name, the origin with
    ``own``."""
    return MappingProxyType(
        {name: own if name == origin else Deny(reason, None, detail(name)) for name in names}
    )


def _compile_origin(
    origin: str,
    own: Deny,
    names: tuple[str, ...],
    pairs: Mapping[str, list[Agreement]],
    unsigned: Mapping[str, str],
) -> dict[AlertType, _Table]:
    """The tables of one origin: per type, the time cuts and every outcome per segment and rank."""
    pair_cuts = {name: tuple(sorted(_cuts_of(agreements))) for name, agreements in pairs.items()}
    cuts = tuple(sorted({cut for each in pair_cuts.values() for cut in each}))
    # Segment 0 is everything before the first cut; any instant in it decides it.
    moments = [cuts[0] - timedelta(microseconds=1) if cuts else datetime(2000, 1, 1, tzinfo=UTC)]
    moments.extend(cuts)
    # A pair's outcome changes only at its own cuts: compute it once per pair segment.
    memo: dict[tuple[str, AlertType, int, int], Outcome] = {}

    def outcome(name: str, alert_type: AlertType, code: HandlingCode, moment: datetime) -> Outcome:
        if name == origin:
            return own
        key = (name, alert_type, _RANK_OF[code], bisect_right(pair_cuts[name], moment))
        found = memo.get(key)
        if found is None:
            found = memo[key] = pair_outcome(
                pairs[name], origin, name, alert_type, code, moment, unsigned
            )
        return found

    return {
        alert_type: _Table(
            cuts,
            tuple(
                tuple(
                    MappingProxyType(
                        {name: outcome(name, alert_type, code, moment) for name in names}
                    )
                    for code in _RANKS
                )
                for moment in moments
            ),
        )
        for alert_type in AlertType
    }


@dataclass(frozen=True)
class PolicyIndex:
    """An agreement set compiled for fast decisions; build it once per agreement-set version."""

    digest: str
    label: str
    participants: tuple[str, ...]
    _tables: Mapping[tuple[str, AlertType], _Table]
    _not_previous: Mapping[str, _Template]
    _no_earlier: Mapping[str, _Template]

    @classmethod
    def build(
        cls,
        aset: AgreementSet,
        participants: Collection[str],
        consent: Mapping[str, Consent] | None = None,
    ) -> PolicyIndex:
        """Compile ``aset`` for the participant ids; agreements naming others are ignored.

        ``consent`` (``domain.consent.consents``) is what the parties' signatures
        establish: an agreement not signed by both denies NOT_SIGNED, and a status a
        party's statement set replaces the signed one. Every component that routes or
        judges routing passes it; without it the agreements' terms alone are compiled
        (to study terms, as the property tests do).
        """
        names = tuple(sorted(set(participants)))
        known = frozenset(names)
        by_pair: dict[tuple[str, str], list[Agreement]] = {}
        unsigned: dict[str, str] = {}
        for agreement in aset.agreements:
            if consent is not None:
                granted = consent.get(agreement.id)
                if granted is None or not granted.signed_by_both:
                    unsigned[agreement.id] = (
                        f"agreement {agreement.id} is not signed by both parties"
                        if granted is None
                        else granted.not_signed_detail()
                    )
                elif granted.status is not agreement.status:
                    agreement = agreement.model_copy(update={"status": granted.status})
            first, second = agreement.parties
            if first == second or first not in known or second not in known:
                continue
            by_pair.setdefault((first, second), []).append(agreement)
            by_pair.setdefault((second, first), []).append(agreement)
        tables: dict[tuple[str, AlertType], _Table] = {}
        not_previous: dict[str, _Template] = {}
        no_earlier: dict[str, _Template] = {}
        for origin in names:
            own = Deny(DenyReason.ORIGIN, None, f"{origin} is the origin; never delivered back")
            not_previous[origin] = _all_denied(
                origin,
                own,
                names,
                DenyReason.NOT_PREVIOUS_RECIPIENT,
                lambda name: f"a cancel goes only to earlier recipients; {name} is not one",
            )
            no_earlier[origin] = _all_denied(
                origin,
                own,
                names,
                DenyReason.NO_EARLIER_VERSION,
                lambda _: (
                    "no earlier version of this alert was delivered to anyone; nothing to withdraw"
                ),
            )
            pairs = {name: by_pair.get((origin, name), []) for name in names if name != origin}
            compiled = _compile_origin(origin, own, names, pairs, unsigned)
            for alert_type, table in compiled.items():
                tables[(origin, alert_type)] = table
        return cls(
            digest=aset.digest,
            label=aset.label,
            participants=names,
            _tables=tables,
            _not_previous=not_previous,
            _no_earlier=no_earlier,
        )

    def template(self, alert: PolicyInput, at: datetime) -> _Template:
        """The outcomes the agreements alone give, before any lifecycle rule."""
        table = self._tables.get((alert.origin, alert.alert_type))
        if table is None:
            return self._unknown_origin(alert.origin)
        return table.segments[bisect_right(table.cuts, at)][_RANK_OF[alert.handling_code]]

    def _unknown_origin(self, origin: str) -> _Template:
        deny = Deny(DenyReason.UNKNOWN_PARTICIPANT, None, f"origin {origin!r} is not a participant")
        return MappingProxyType(dict.fromkeys(self.participants, deny))


def decide(
    alert: PolicyInput,
    at: datetime,
    index: PolicyIndex,
    history: Collection[str] = frozenset(),
) -> Decision:
    """Decide, for every participant, deliver (which sections) or deny (why).

    ``history`` holds the participants that received an earlier version of the
    alert. CREATE follows the agreements (history is not consulted). UPDATE
    follows the agreements too; an earlier recipient no longer permitted is
    denied with the agreements' reason and keeps its earlier version. CANCEL
    goes to every earlier recipient whatever the agreements say, and to no one
    else; with no history there is nothing to withdraw.
    """
    if at.tzinfo is None:
        raise PolicyError("decision time must carry a time zone")
    operation = alert.operation
    if operation is Operation.CANCEL:
        outcomes = _cancel(alert, at, index, history)
    else:
        base = index.template(alert, at)
        if operation is Operation.CREATE or not history:
            return Decision(index.digest, at, base, index.label)
        outcomes = _update(alert, base, history)
    return Decision(index.digest, at, MappingProxyType(outcomes), index.label)


def _update(alert: PolicyInput, base: _Template, history: Collection[str]) -> dict[str, Outcome]:
    outcomes = base.copy()
    for name in sorted(history):  # earlier recipients no longer participants: in a stable order
        if name == alert.origin:
            continue
        current = outcomes.get(name)
        if current is None:
            outcomes[name] = Deny(
                DenyReason.UNKNOWN_PARTICIPANT,
                None,
                f"{name} is not a participant any more" + _KEEPS_EARLIER,
            )
        elif isinstance(current, Deny):
            outcomes[name] = Deny(
                current.reason, current.agreement_id, current.detail + _KEEPS_EARLIER
            )
    return outcomes


def _cancel(
    alert: PolicyInput, at: datetime, index: PolicyIndex, history: Collection[str]
) -> dict[str, Outcome]:
    origin = alert.origin
    earlier = sorted(name for name in history if name != origin)
    if not earlier:
        template = index._no_earlier.get(origin)
        return (template if template is not None else index.template(alert, at)).copy()
    template = index._not_previous.get(origin)
    if template is None:  # unknown origin: nothing it sends is delivered
        return index.template(alert, at).copy()
    base = index.template(alert, at)
    outcomes = template.copy()
    for name in earlier:
        permitted = base.get(name)
        agreement_id = permitted.agreement_id if isinstance(permitted, Deliver) else None
        outcomes[name] = Deliver((), agreement_id, Basis.EARLIER_RECIPIENT)
    return outcomes
