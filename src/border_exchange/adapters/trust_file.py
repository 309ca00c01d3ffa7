"""Reading the trust store document from a file, and reloading it under its governance."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import structlog

from border_exchange.domain.trust import TrustStore, parse_trust_store
from border_exchange.domain.trust_governance import GovernedStore, accept, governed, stale
from border_exchange.errors import BorderExchangeError, TrustStoreError

log = structlog.get_logger(__name__)


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
        self.text: str | None = None
        """The document of the store in force, as read."""

    def adopt(self, text: str) -> None:
        """Take ``text``, a governed store this component accepted before (kept across a
        restart), as the store in force: the file must then be accepted against it."""
        store = parse_trust_store(text)
        governance = governed(text, store)
        if governance is None:
            raise TrustStoreError("the kept trust store has no governance")
        self.governance, self.current, self.text = governance, store, text

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
        self.governance, self.current, self.text = governance, store, text
        return store


class TrustWatch:
    """A trust store file a long-running component follows (the router, ``gateway serve``).

    ``poll`` reloads the file when it changed (modification time or size) and returns the
    new store in force, or None when nothing changed or the new version was refused: that
    is logged ``trust.rejected`` with why, ``on_rejected`` is called, and the last valid
    store stays (``TrustFile.reload``).
    """

    def __init__(
        self, trust_file: TrustFile, on_rejected: Callable[[], None] | None = None
    ) -> None:
        self.trust_file = trust_file
        self.on_rejected = on_rejected
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.trust_file.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def poll(self) -> TrustStore | None:
        """The new store when the file changed and is accepted; None otherwise."""
        stamp = self._stat()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        path = str(self.trust_file.path)
        try:
            store = self.trust_file.reload()
        except BorderExchangeError as exc:
            log.error("trust.rejected", path=path, error=str(exc))
            if self.on_rejected is not None:
                self.on_rejected()
            return None
        log.info("trust.loaded", path=path)
        return store


class TrustKeeper(Protocol):
    """Where a component keeps the last valid governed store across restarts."""

    def kept_trust(self) -> str | None:
        """The document of the last valid governed store, or None."""

    def keep_trust(self, text: str) -> None:
        """Keep ``text`` as the last valid governed store."""


def load_kept(path: str | Path, keeper: TrustKeeper) -> TrustStore:
    """The trust store at ``path`` accepted against the one ``keeper`` kept (a post's store).

    A governed store the file cannot replace (unsigned, under-signed, an older serial, stale)
    is refused, logged as ``trust.rejected`` with why, and the kept one stays in force,
    as long as the kept one is itself inside its validity window; otherwise
    ``TrustStoreError`` names both reasons. A store accepted is kept for the next start.
    """
    trust_file = TrustFile(path)
    kept = keeper.kept_trust()
    if kept is not None:
        trust_file.adopt(kept)
    try:
        store = trust_file.reload()
    except TrustStoreError as exc:
        if trust_file.governance is None or trust_file.current is None:
            raise
        expired = stale(trust_file.governance, trust_file.clock())
        if expired is not None:
            raise TrustStoreError(
                f"{exc}; and the last valid store kept (serial {trust_file.governance.serial})"
                f" is {expired}"
            ) from exc
        log.error(
            "trust.rejected",
            path=str(path),
            error=str(exc),
            kept_serial=trust_file.governance.serial,
            kept_digest=trust_file.governance.digest.hex(),
        )
        return trust_file.current
    if trust_file.governance is not None and trust_file.text is not None:
        keeper.keep_trust(trust_file.text)
    return store


def load_governed(path: str | Path) -> tuple[TrustStore, GovernedStore]:
    """The governed trust store at ``path`` (valid now, every entry signed, approved by a
    majority); ``TrustStoreError`` for a store without governance too."""
    trust_file = TrustFile(path)
    store = trust_file.reload()
    if trust_file.governance is None:
        raise _not_governed(path)
    return store, trust_file.governance


def _not_governed(path: str | Path) -> TrustStoreError:
    return TrustStoreError(
        f"{path}: refused: the store is not governed (no serial, validity window or "
        f"signatures), so nothing shows its participants agreed to it"
    )


def read_governed(path: str | Path) -> GovernedStore:
    """The governed trust store in the file at ``path``, as written: ``TrustStoreError`` when
    it cannot be read or has no governance. Whether its signatures and window held when a
    component took it is for the caller to check at that time (``trust_governance.accept``):
    an auditor checks it at the time the router took it, not now."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustStoreError(f"cannot read trust store {path}: {exc.strerror}") from exc
    try:
        governance = governed(text, parse_trust_store(text))
    except TrustStoreError as exc:
        raise TrustStoreError(f"{path}: {exc}") from exc
    if governance is None:
        raise _not_governed(path)
    return governance
