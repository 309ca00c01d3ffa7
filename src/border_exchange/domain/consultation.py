"""The consultation log of a border post: who searched what, when, and what it hit.

Every search of the post's alerts (web page or command line) is one entry. Entries are
hash-chained: each holds the SHA-256 of the previous one, and its own hash covers its
fields and that link under a domain-separation tag, so that removing, reordering or
editing an entry breaks the chain from there on (``verify`` names where). The log is
kept for the national data-protection officer (EU police directive 2016/680 art. 25).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Final

GENESIS: Final = "0" * 64
"""The previous-hash of the first entry."""

_TAG: Final = b"border-exchange consultation log v1\x00"


@dataclass(frozen=True, slots=True)
class Search:
    """One search as made: who, through what, for what, with what result."""

    at: datetime
    officer: str
    channel: str  # "web" or "cli"
    kind: str  # "name", "plate", "vin", "document"
    query: str
    dob: str | None
    hits: tuple[str, ...]  # "ORIGIN/alert-id v<version>" of every alert shown
    outcome: str  # "hit", "no_hit", "refused: <why>", "store_error: <what>"


@dataclass(frozen=True, slots=True)
class Entry:
    """A search as logged: its number, the link to the previous entry, its hash."""

    seq: int
    search: Search
    prev: str
    hash: str

    def as_record(self) -> dict[str, object]:
        """The entry as a JSON-ready mapping (what an export holds, one per line)."""
        fields = asdict(self.search)
        fields["at"] = self.search.at.isoformat()
        fields["hits"] = list(self.search.hits)
        return {"seq": self.seq, **fields, "prev": self.prev, "hash": self.hash}


def _digest(seq: int, search: Search, prev: str) -> str:
    fields = asdict(search)
    fields["at"] = search.at.isoformat()
    fields["hits"] = list(search.hits)
    body = json.dumps(
        {"seq": seq, "prev": prev, **fields}, sort_keys=True, ensure_ascii=False
    ).encode()
    return hashlib.sha256(_TAG + body).hexdigest()


def chain(previous: Entry | None, search: Search) -> Entry:
    """The entry that records ``search`` after ``previous`` (None for the first)."""
    seq = 1 if previous is None else previous.seq + 1
    prev = GENESIS if previous is None else previous.hash
    return Entry(seq, search, prev, _digest(seq, search, prev))


def verify(entries: Iterable[Entry]) -> list[str]:
    """Every break in the chain of ``entries`` (in log order), or an empty list."""
    problems: list[str] = []
    expected_seq, expected_prev = 1, GENESIS
    for entry in entries:
        if entry.seq != expected_seq:
            problems.append(f"entry {entry.seq}: expected number {expected_seq} (entries missing)")
        if entry.prev != expected_prev:
            problems.append(f"entry {entry.seq}: does not follow the entry before it")
        if _digest(entry.seq, entry.search, entry.prev) != entry.hash:
            problems.append(f"entry {entry.seq}: content altered (hash mismatch)")
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    return problems
