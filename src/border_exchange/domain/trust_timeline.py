"""Which trust store was in force at each moment of a replayed period.

The router takes a new trust store while it runs (``adapters.trust_file.TrustFile``),
so a period may have been routed under several stores, one after the other. An
auditor re-checks each record under the store in force when the router decided it:
a key the second store revoked or removed does not count after the change, and one
it added does not count before.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from border_exchange.domain.trust import TrustStore


@dataclass(frozen=True)
class TrustTimeline:
    """``first`` in force from the start, then each store of ``changes`` from its time on."""

    first: TrustStore
    changes: tuple[tuple[datetime, TrustStore], ...] = ()
    """``(since, store)`` in time order."""
    _times: tuple[datetime, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        times = tuple(since for since, _ in self.changes)
        if list(times) != sorted(times):
            raise ValueError("the changes of a trust timeline must be in time order")
        object.__setattr__(self, "_times", times)

    @classmethod
    def fixed(cls, trust: TrustStore) -> TrustTimeline:
        """One store in force throughout."""
        return cls(trust)

    @classmethod
    def of(cls, stores: Sequence[tuple[datetime, TrustStore]]) -> TrustTimeline:
        """The stores taken at the given times (at least one; the first counts from the start)."""
        ordered = sorted(stores, key=lambda item: item[0])
        return cls(ordered[0][1], tuple(ordered[1:]))

    def at(self, moment: datetime) -> TrustStore:
        """The store in force at ``moment``."""
        index = bisect.bisect_right(self._times, moment)
        return self.first if index == 0 else self.changes[index - 1][1]

    @property
    def stores(self) -> tuple[TrustStore, ...]:
        """Every store of the timeline, in order."""
        return (self.first, *(store for _, store in self.changes))


def as_timeline(trust: TrustStore | TrustTimeline) -> TrustTimeline:
    """``trust`` as a timeline (one store: in force throughout)."""
    return trust if isinstance(trust, TrustTimeline) else TrustTimeline.fixed(trust)
