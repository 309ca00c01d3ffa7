"""The agreement-set file: load and watch it, keep every version in a content-addressed history.

A new version replaces the one in force only after it validates fully (structure
and semantic checks against the participants). An invalid file leaves the
previous set in force and is logged as an error. Every set that is loaded, and
so may decide anything, is first written to ``<history_dir>/<digest>.yaml``
(its canonical bytes, write-once, by atomic rename), so that an auditor can
fetch the exact set a decision names and re-check it.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import re
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Final

import structlog

from border_exchange.domain.agreements import (
    AgreementSet,
    check_agreement_set,
    parse_agreement_set,
)
from border_exchange.domain.consent import signature_defects
from border_exchange.domain.recipients import SectionRecipients
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import PolicyError

log = structlog.get_logger(__name__)

_DIGEST: Final = re.compile(r"^[0-9a-f]{64}$")

OnChange = Callable[[AgreementSet], Awaitable[None] | None]


class AgreementHistory:
    """Every agreement set that was ever in force, stored by content digest."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path_of(self, digest: str) -> Path:
        """Where the set with ``digest`` is stored; PolicyError when it is not a digest."""
        if _DIGEST.fullmatch(digest) is None:
            raise PolicyError(f"{digest!r} is not an agreement-set digest (64 hex digits)")
        return self.directory / f"{digest}.yaml"

    def record(self, aset: AgreementSet) -> Path:
        """Store ``aset`` under its digest, once; an existing entry is left as it is."""
        target = self.path_of(aset.digest)
        if target.exists():
            return target
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{aset.digest}.{os.getpid()}.tmp"
        try:
            with temporary.open("wb") as stream:
                stream.write(aset.canonical_bytes())
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise PolicyError(f"cannot record agreement set {aset.digest}: {exc}") from exc
        return target

    def fetch(self, digest: str) -> AgreementSet:
        """The set stored under ``digest``, verified to hash to it."""
        path = self.path_of(digest)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise PolicyError(f"no agreement set {digest} in the history") from exc
        except OSError as exc:
            raise PolicyError(f"cannot read agreement set {digest}: {exc}") from exc
        aset = parse_agreement_set(text)
        if aset.digest != digest:
            raise PolicyError(
                f"history entry {digest} is corrupt: its content hashes to {aset.digest}"
            )
        return aset

    def digests(self) -> tuple[str, ...]:
        """The digests of every stored set, sorted."""
        if not self.directory.is_dir():
            return ()
        return tuple(
            sorted(p.stem for p in self.directory.glob("*.yaml") if _DIGEST.fullmatch(p.stem))
        )


def set_problems(
    aset: AgreementSet, participants: Collection[str], trust: TrustStore | None
) -> list[str]:
    """Every problem of ``aset``: its semantic ones, and with ``trust`` every signature or
    statement that does not count (a missing signature is no problem: that agreement is
    simply not in force)."""
    problems = [str(problem) for problem in check_agreement_set(aset, participants)]
    if trust is not None:
        problems.extend(str(defect) for defect in signature_defects(aset, trust))
    return problems


def validate_agreements(
    text: str, participants: Collection[str], trust: TrustStore | None = None
) -> AgreementSet:
    """Parse and check an agreement set (its signatures too with ``trust``); PolicyError lists
    every problem."""
    aset = parse_agreement_set(text)
    problems = set_problems(aset, participants, trust)
    if problems:
        raise PolicyError(
            f"agreement set {aset.label!r} has {len(problems)} problem(s): " + "; ".join(problems)
        )
    return aset


class AgreementSource:
    """The agreement-set file: loads it, watches it, and records every set put in force."""

    def __init__(
        self,
        path: Path | str,
        participants: Collection[str],
        history_dir: Path | str,
        trust: TrustStore | None = None,
    ) -> None:
        self.path = Path(path)
        self.participants = frozenset(participants)
        self.trust = trust
        """With a trust store, a set whose signatures do not all count is refused."""
        self.history = AgreementHistory(history_dir)
        self._current: AgreementSet | None = None
        self._seen: tuple[int, int, int] | None = None
        self._seen_content: str | None = None

    @property
    def current(self) -> AgreementSet | None:
        """The set in force: the last one that validated, or None before the first."""
        return self._current

    def record(self, aset: AgreementSet) -> Path:
        """Store ``aset`` in the history (write-once)."""
        return self.history.record(aset)

    def fetch(self, digest: str) -> AgreementSet:
        """The set a decision names by ``digest``, from the history."""
        return self.history.fetch(digest)

    def load(self) -> AgreementSet:
        """Read, validate fully and record the file's set, and put it in force."""
        data = self._read()
        aset = validate_agreements(
            data.decode("utf-8", errors="replace"), self.participants, self.trust
        )
        return self._put_in_force(aset)

    def _read(self) -> bytes:
        try:
            stat = self.path.stat()
            data = self.path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"cannot read agreement set {self.path}: {exc}") from exc
        self._seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        self._seen_content = hashlib.sha256(data).hexdigest()
        return data

    def _put_in_force(self, aset: AgreementSet) -> AgreementSet:
        self.record(aset)
        previous = self._current
        self._current = aset
        log.info(
            "agreements.loaded",
            path=str(self.path),
            label=aset.label,
            digest=aset.digest,
            agreements=len(aset.agreements),
            replaces=None if previous is None else previous.digest,
        )
        return aset

    def _changed_on_disk(self) -> bool:
        try:
            stat = self.path.stat()
        except OSError:
            return self._seen is not None or self._current is None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._seen

    def poll(self) -> AgreementSet | None:
        """Look at the file once; the new set when one was put in force, else None."""
        if not self._changed_on_disk():
            return None
        kept = None if self._current is None else self._current.digest
        before = self._seen_content
        try:
            data = self._read()
        except PolicyError as exc:
            self._seen = None
            log.error("agreements.unreadable", path=str(self.path), error=str(exc), kept=kept)
            return None
        if self._seen_content == before:
            return None  # touched, not changed (or already reported)
        try:
            aset = parse_agreement_set(data.decode("utf-8", errors="replace"))
            problems = set_problems(aset, self.participants, self.trust)
        except PolicyError as exc:
            problems = [str(exc)]
        if problems:
            log.error("agreements.rejected", path=str(self.path), problems=problems, kept=kept)
            return None
        if self._current is not None and self._current.digest == aset.digest:
            return None
        return self._put_in_force(aset)

    async def watch(self, on_change: OnChange, interval: float = 1.0) -> None:
        """Poll the file every ``interval`` seconds and call ``on_change`` with each new set."""
        while True:
            aset = self.poll()
            if aset is not None:
                result = on_change(aset)
                if inspect.isawaitable(result):
                    await result
            await asyncio.sleep(interval)


def section_recipients(path: Path | str, trust: TrustStore) -> SectionRecipients:
    """Who each section is sealed for, from the signed agreement set in the file at ``path``
    (checked fully, its signatures against ``trust``), as a gateway that encrypts needs."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read agreement set {path}: {exc.strerror}") from exc
    aset = validate_agreements(text, trust.participants, trust)
    return SectionRecipients.of(aset, trust)
