"""Which trust store the router routed under, checked against the governed store the
auditor was given.

The router publishes every agreement set with the governed trust store it holds
(``TRUST_STORE_HEADER`` on the agreements-topic record, published again when the
store changes). The stores in force during a replayed window are the last one
recorded before it and every one recorded inside it. Each must be the store the
auditor was given (which ``adapters.trust_file.load_governed`` checked: valid, every
entry signed, approved by a quorum), and the given store must have been inside its
validity window when the router took it. Otherwise the window's decisions rest on a
store whose signatures this replay cannot confirm: a violation.
"""

from __future__ import annotations

from collections.abc import Iterable

from border_exchange.domain.audit_values import LogRecord, Violation, ViolationCode, Window
from border_exchange.domain.naming import AGREEMENTS_TOPIC
from border_exchange.domain.trust_governance import (
    TRUST_STORE_HEADER,
    GovernedStore,
    StoreReference,
    stale,
)


def in_force(records: Iterable[LogRecord], window: Window) -> list[LogRecord]:
    """The agreements-topic records whose trust store was in force during ``window``."""
    ordered = sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    before = [r for r in ordered if r.timestamp < window.start]
    inside = [r for r in ordered if r.timestamp in window]
    return before[-1:] + inside


def trust_violations(
    records: Iterable[LogRecord], governance: GovernedStore, window: Window, decisions: int
) -> list[Violation]:
    """Why the ``decisions`` of ``window`` do not rest on the governed store ``governance``."""
    if decisions == 0:
        return []
    given = StoreReference.of(governance)
    used = in_force(records, window)
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
    found: list[Violation] = []
    for record in used:
        raw = record.header(TRUST_STORE_HEADER)
        reference = None if raw is None else StoreReference.parse(raw)
        where = (record.topic, record.partition, record.offset)
        if reference is None:
            found.append(
                Violation(
                    ViolationCode.TRUST_STORE_NOT_GOVERNED,
                    *where,
                    "the router routed under a trust store without governance (no serial, "
                    "validity or quorum signatures recorded with the agreement set)",
                )
            )
        elif reference != given:
            found.append(
                Violation(
                    ViolationCode.TRUST_STORE_MISMATCH,
                    *where,
                    f"the router routed under trust store serial {reference.serial} (digest "
                    f"{reference.digest[:16]}…), not the governed store given (serial "
                    f"{given.serial}, digest {given.digest[:16]}…): its signatures are not "
                    f"confirmed; replay the period with that store",
                )
            )
        else:
            expired = stale(governance, record.timestamp)
            if expired is not None:
                found.append(
                    Violation(
                        ViolationCode.TRUST_STORE_MISMATCH,
                        *where,
                        f"the router took trust store serial {given.serial} outside its "
                        f"validity window ({expired})",
                    )
                )
    return found
