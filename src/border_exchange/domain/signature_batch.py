"""Ed25519 checks gathered in batches and run on a worker thread, beside the caller's work.

A replay verifies one origin signature per message and spends as long again on Python
work around it. The checks themselves need no Python: the compiled ``verify_batch``
runs a batch through libsodium's ``crypto_sign_open`` (the very function PyNaCl calls;
the extension links libsodium itself) without holding the GIL, so on a machine with a
second core the signatures are checked while the caller goes on. Without the compiled
module the batch is checked on the calling thread with PyNaCl; the answers are the same.

The caller gives each check a token and learns at the end which tokens failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Final, Generic, TypeVar

from border_exchange.domain import fastpath
from border_exchange.domain.signing import signature_holds

T = TypeVar("T")

BATCH: Final = 256

SignatureHook = Callable[[bytes, bytes], None]
"""Takes one Ed25519 check (signature || message, raw public key) to answer later."""


def _check_here(signed: tuple[bytes, ...], keys: tuple[bytes, ...]) -> bytes:
    """``verify_batch``'s answers, computed with PyNaCl on the calling thread."""
    return bytes(signature_holds(item, key) for item, key in zip(signed, keys, strict=True))


def _check_native(signed: tuple[bytes, ...], keys: tuple[bytes, ...]) -> bytes:
    return fastpath.verify_batch(signed, keys)


class SignatureChecks(Generic[T]):
    """Signature checks queued by ``add`` and answered by ``failed``; use ``signature_checks``."""

    def __init__(self, executor: ThreadPoolExecutor | None, batch: int = BATCH) -> None:
        self._executor = executor
        self._batch = batch
        self._signed: list[bytes] = []
        self._keys: list[bytes] = []
        self._tokens: list[T] = []
        self._done: list[tuple[list[T], Future[bytes] | bytes]] = []
        self.count = 0

    def add(self, token: T, signed: bytes, public_key: bytes) -> None:
        """Queue the check of ``signed`` (signature || message) under ``public_key``."""
        self._signed.append(signed)
        self._keys.append(public_key)
        self._tokens.append(token)
        self.count += 1
        if len(self._signed) >= self._batch:
            self._flush()

    def _flush(self) -> None:
        if not self._signed:
            return
        signed, keys = tuple(self._signed), tuple(self._keys)
        if self._executor is None:
            self._done.append((self._tokens, _check_here(signed, keys)))
        else:
            self._done.append((self._tokens, self._executor.submit(_check_native, signed, keys)))
        self._signed, self._keys, self._tokens = [], [], []

    def failed(self) -> list[T]:
        """The tokens of every check queued so far whose signature does not verify."""
        self._flush()
        failed: list[T] = []
        for tokens, answer in self._done:
            results = answer if isinstance(answer, bytes) else answer.result()
            failed.extend(token for token, ok in zip(tokens, results, strict=True) if not ok)
        self._done.clear()
        return failed

    async def failed_async(self) -> list[T]:
        """``failed``, awaited on an event loop that goes on meanwhile.

        The worker thread's answers are awaited as futures: the thread that checks
        the last batch wakes the loop itself, with no thread in between waiting for it.
        """
        self._flush()
        for _, answer in self._done:
            if not isinstance(answer, bytes):
                await asyncio.wrap_future(answer)
        return self.failed()

    async def answered(self) -> AsyncIterator[tuple[T, list[T]]]:
        """Every check queued so far, batch by batch in the order queued, as soon as each
        batch is checked: its last token and those of its tokens whose signature does not
        verify.

        A caller that decides its records in the order it queued them can decide those of
        the first batches while the thread still checks the later ones.
        """
        self._flush()
        done, self._done = self._done, []
        for tokens, answer in done:
            results = answer if isinstance(answer, bytes) else await asyncio.wrap_future(answer)
            yield tokens[-1], [token for token, ok in zip(tokens, results, strict=True) if not ok]


@contextmanager
def signature_checks(*, threaded: bool = True) -> Iterator[SignatureChecks[Any]]:
    """Signature checks on a worker thread (with the compiled module), for one ``with``."""
    if not threaded or not fastpath.NATIVE:
        yield SignatureChecks(None)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bx-signatures") as executor:
        yield SignatureChecks(executor)
