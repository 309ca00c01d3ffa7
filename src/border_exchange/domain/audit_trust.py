"""Which trust stores the router routed under, checked against the governed stores the
auditor was given.

The router publishes every agreement set with the governed trust store it holds
(``TRUST_STORE_HEADER`` on the agreements-topic record, published again, under the
set's digest, each time it takes a new store). The records of the sets the window's
decisions name are the router's own account of its stores: the last one before the
window and every one inside it were in force. The auditor is given the governed stores
(one or more; those the window needs). Each store in force must be one of them; each
must be one the governance rules let replace the store before it
(``trust_governance.accept`` at the time the router took it: entries signed by their
participants, a quorum for a membership change, a higher serial, inside its validity
window); and no decision may be made after the store in force expired. The first store
in force is checked against the given store of the highest serial below it, or on its
own when there is none. ``store_timeline`` gives the replay the store in force at each
moment, so that each record is checked under it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from border_exchange.domain.audit_values import LogRecord, Violation, ViolationCode, Window
from border_exchange.domain.naming import AGREEMENTS_TOPIC
from border_exchange.domain.trust_governance import (
    TRUST_STORE_HEADER,
    GovernedStore,
    StoreReference,
    accept,
    stale,
)
from border_exchange.domain.trust_timeline import TrustTimeline


@dataclass(frozen=True, slots=True)
class _Taken:
    """An agreements-topic record and the store it names (None: not governed, or unreadable)."""

    record: LogRecord
    reference: StoreReference | None


def _taken(records: Iterable[LogRecord]) -> list[_Taken]:
    ordered = sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    found = []
    for record in ordered:
        raw = record.header(TRUST_STORE_HEADER)
        found.append(_Taken(record, None if raw is None else StoreReference.parse(raw)))
    return found


def in_force(records: Iterable[LogRecord], window: Window) -> list[LogRecord]:
    """The agreements-topic records whose trust store was in force during ``window``."""
    ordered = sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    before = [r for r in ordered if r.timestamp < window.start]
    inside = [r for r in ordered if r.timestamp in window]
    return before[-1:] + inside


def _by_reference(given: Iterable[GovernedStore]) -> dict[StoreReference, GovernedStore]:
    return {StoreReference.of(governance): governance for governance in given}


def store_timeline(records: Iterable[LogRecord], given: Sequence[GovernedStore]) -> TrustTimeline:
    """The given stores in force over time, as the agreements-topic ``records`` show the
    router took them (records naming a store not given are left to ``trust_violations``).
    Without any such record, the given store of the highest serial throughout."""
    if not given:
        raise ValueError("a trust timeline needs at least one governed store")
    known = _by_reference(given)
    taken: list[tuple[datetime, GovernedStore]] = []
    for item in _taken(records):
        governance = known.get(item.reference) if item.reference is not None else None
        if governance is not None and (not taken or taken[-1][1] is not governance):
            taken.append((item.record.timestamp, governance))
    if not taken:
        latest = max(given, key=lambda g: g.serial)
        return TrustTimeline.fixed(latest.store)
    return TrustTimeline.of([(since, governance.store) for since, governance in taken])


def _where(record: LogRecord) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def trust_violations(
    records: Iterable[LogRecord],
    given: Sequence[GovernedStore],
    window: Window,
    decided_at: Sequence[datetime],
    sets: Collection[str] = (),
) -> list[Violation]:
    """Why the decisions of ``window`` (made at ``decided_at``, under the agreement sets
    ``sets``) do not rest on the governed stores ``given``.

    Only the agreements-topic records of ``sets`` count (all when it is empty): those of
    other sets belong to no decision of this window.
    """
    if not decided_at:
        return []
    relevant = [
        r
        for r in records
        if not sets or (r.key is not None and r.key.decode(errors="replace") in sets)
    ]
    used = in_force(relevant, window)
    decisions = len(decided_at)
    if not used:
        return [
            Violation(
                ViolationCode.TRUST_STORE_NOT_GOVERNED,
                AGREEMENTS_TOPIC,
                0,
                -1,
                f"{decisions} decision(s), but the agreements topic records no trust store "
                f"in force for the window",
            )
        ]
    known = _by_reference(given)
    found: list[Violation] = []
    previous = _predecessor(used, given, known)
    spans: list[tuple[datetime, GovernedStore | None, LogRecord]] = []
    for item in _taken(used):
        record, reference = item.record, item.reference
        governance = None if reference is None else known.get(reference)
        spans.append((record.timestamp, governance, record))
        if reference is None:
            found.append(
                Violation(
                    ViolationCode.TRUST_STORE_NOT_GOVERNED,
                    *_where(record),
                    "the router routed under a trust store without governance (no serial, "
                    "validity or quorum signatures recorded with the agreement set)",
                )
            )
            previous = None
            continue
        if governance is None:
            found.append(
                Violation(
                    ViolationCode.TRUST_STORE_MISMATCH,
                    *_where(record),
                    f"the router routed under trust store serial {reference.serial} (digest "
                    f"{reference.digest[:16]}…), which is not among the governed stores "
                    f"given (serials {', '.join(str(g.serial) for g in given)}): its "
                    f"signatures are not confirmed; give that store too",
                )
            )
            previous = None
            continue
        if previous is governance:
            continue
        expired = stale(governance, record.timestamp)
        if expired is not None:
            found.append(
                Violation(
                    ViolationCode.TRUST_STORE_MISMATCH,
                    *_where(record),
                    f"the router took trust store serial {governance.serial} outside its "
                    f"validity window ({expired})",
                )
            )
        problems = [p for p in accept(governance, previous, record.timestamp) if p != expired]
        if problems:
            instead = (
                "as a first store" if previous is None else f"in place of serial {previous.serial}"
            )
            found.append(
                Violation(
                    ViolationCode.TRUST_STORE_NOT_ACCEPTED,
                    *_where(record),
                    f"the router took trust store serial {governance.serial} {instead}, which "
                    f"the governance rules refuse: " + "; ".join(problems),
                )
            )
        previous = governance
    found.extend(_decided_after_expiry(spans, decided_at, window))
    return found


def _predecessor(
    used: Sequence[LogRecord],
    given: Sequence[GovernedStore],
    known: dict[StoreReference, GovernedStore],
) -> GovernedStore | None:
    """The given store the first store in force replaced: the highest serial below it."""
    first = _taken(used[:1])[0].reference
    governance = None if first is None else known.get(first)
    if governance is None:
        return None
    earlier = [g for g in given if g.serial < governance.serial]
    return max(earlier, key=lambda g: g.serial) if earlier else None


def _decided_after_expiry(
    spans: Sequence[tuple[datetime, GovernedStore | None, LogRecord]],
    decided_at: Sequence[datetime],
    window: Window,
) -> list[Violation]:
    """One violation per store in force under which decisions were made after it expired."""
    times = [since for since, _, _ in spans]
    late: Counter[int] = Counter()
    for moment in decided_at:
        if moment not in window:
            continue
        # The last store taken at or before the decision (the first, for one before it).
        index = max(bisect.bisect_right(times, moment) - 1, 0)
        governance = spans[index][1]
        if governance is not None and moment >= governance.valid_until:
            late[index] += 1
    found = []
    for index, count in sorted(late.items()):
        _, governance, record = spans[index]
        assert governance is not None
        found.append(
            Violation(
                ViolationCode.TRUST_STORE_EXPIRED,
                *_where(record),
                f"{count} decision(s) made after trust store serial {governance.serial}, then "
                f"in force, expired at {governance.valid_until.isoformat()}",
            )
        )
    return found
