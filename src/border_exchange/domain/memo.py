"""Values derived from shared objects, built once per object.

The policy index hands out one read-only outcome mapping per agreement segment and
handling code, so nearly every decision's outcomes are one of a few objects: what the
router and the auditor derive from such a mapping is built once per mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class PerObject(Generic[K, V]):
    """``build(obj)``, kept per object identity for objects that are never changed.

    Each value is kept with its object, so no other object can reuse the id meanwhile.
    Objects made for one use only get a value of their own, dropped with the others
    once ``limit`` are kept.
    """

    def __init__(self, build: Callable[[K], V], limit: int) -> None:
        self.build = build
        self.limit = limit
        self._known: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K) -> V:
        """The value built for ``obj`` (built now if it is not kept)."""
        known = self._known.get(id(obj))
        if known is not None and known[0] is obj:
            return known[1]
        value = self.build(obj)
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[id(obj)] = (obj, value)
        return value
