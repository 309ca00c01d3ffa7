"""The start of an audit chain that is no longer there, and what the router does about it.

Audit topics keep every record for good, so a partition whose log starts past offset 0,
or whose first record is not seq 0, has lost records to someone with the power to
delete them (``kafka-delete-records``, ``AdminClient.deleteRecords``). The router's
memory of the messages those records decided is gone with them: replayed as it is,
a re-sent message would be delivered again. The router therefore recovers what it
delivered from the partner feeds it wrote (each copy names its outbox record in
``bx-source``), and refuses to route the partition when it cannot prove that
recovery complete (a feed lost records too, or could not be read) until an operator
accepts the gap by name (``GapToken``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChainStart:
    """Where one audit partition begins, as the router found it on start."""

    chain: str
    """The chain the partition holds (``bx.<P>.outbox/<i>``)."""
    log_start: int
    """The partition's first offset: 0 unless records were deleted."""
    first_seq: int | None
    """The position of its first committed record; None when none is left."""

    @property
    def truncated(self) -> bool:
        """Whether records at the chain's start were deleted."""
        return self.log_start > 0 or self.first_seq not in (None, 0)

    @property
    def token(self) -> str:
        """How an operator names this gap to accept it: ``<chain>@<log start offset>``.

        A later deletion moves the log start, so an acceptance never covers it.
        """
        return f"{self.chain}@{self.log_start}"

    def describe(self) -> str:
        """The gap in words, for logs and errors."""
        first = "no record is left" if self.first_seq is None else f"seq {self.first_seq}"
        return (
            f"audit chain {self.chain} begins at offset {self.log_start} with {first}: "
            "records before it were deleted"
        )


@dataclass(frozen=True, slots=True)
class FeedRecovery:
    """What the router found of its own deliveries in the partner feeds."""

    copies: int
    """Copies of this outbox partition's messages found and remembered."""
    messages: int
    """Distinct messages among them."""
    incomplete: tuple[str, ...] = ()
    """Feed partitions that lost records or could not be read, as ``topic/partition``."""


def may_route(start: ChainStart, recovery: FeedRecovery | None, accepted: Collection[str]) -> bool:
    """Whether the router may route a partition whose chain begins at ``start``.

    Fail closed: only when nothing was deleted; when some records are left to continue
    the chain from and the feeds held every copy the router ever wrote; or when an
    operator accepted this very gap. With no record left the chain cannot go on from
    its last position: it starts again from seq 0, and only once accepted.
    """
    if not start.truncated:
        return True
    if start.first_seq is not None and recovery is not None and not recovery.incomplete:
        return True
    return start.token in accepted
