"""Reading the trust store document from a file, and reloading it under its governance."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from border_exchange.domain.trust import TrustStore, parse_trust_store
from border_exchange.domain.trust_governance import GovernedStore, accept, governed
from border_exchange.errors import TrustStoreError


def load_trust_store(path: str | Path) -> TrustStore:
    """The trust store in the YAML file at ``path``; a governed one only when it is valid now,
    every entry signed by its participant and the whole approved by a majority of them."""
    return TrustFile(path).reload()


class TrustFile:
    """The trust store file as a long-running component reloads it.

    Once a store in force is governed (``domain.trust_governance``), a new version
    replaces it only when ``accept`` finds nothing wrong: signed entries, a quorum for
    membership changes, a later serial, inside its validity window. Otherwise
    ``reload`` raises ``TrustStoreError`` saying why, and the last valid store stays.
    An ungoverned store is taken as before, until a governed one has been in force.
    """

    def __init__(self, path: str | Path, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.governance: GovernedStore | None = None
        self.current: TrustStore | None = None

    def reload(self) -> TrustStore:
        """Read the file; the new store in force, or ``TrustStoreError`` and the old one kept."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TrustStoreError(f"cannot read trust store {self.path}: {exc.strerror}") from exc
        try:
            store = parse_trust_store(text)
            governance = governed(text, store)
        except TrustStoreError as exc:
            raise TrustStoreError(f"{self.path}: {exc}") from exc
        if governance is None:
            if self.governance is not None:
                raise TrustStoreError(
                    f"{self.path}: refused: the store in force is governed (serial "
                    f"{self.governance.serial}); a store without signatures cannot replace it"
                )
        else:
            problems = accept(governance, self.governance, self.clock())
            if problems:
                raise TrustStoreError(f"{self.path}: refused: " + "; ".join(problems))
        self.governance, self.current = governance, store
        return store
