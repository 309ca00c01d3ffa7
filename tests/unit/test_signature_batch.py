"""Signature checks in batches fail exactly the bad signatures, with or without C."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from border_exchange.domain import fastpath, signature_batch
from border_exchange.domain.signature_batch import SignatureChecks, signature_checks

KEY = SigningKey(bytes(range(32)))


def _signed_items() -> list[tuple[int, bytes, bytes, bool]]:
    """(token, signature || message, public key, whether it verifies), good and bad mixed."""
    key = KEY.verify_key.encode()
    other = SigningKey(bytes(32)).verify_key.encode()
    items = []
    for index in range(700):
        message = index.to_bytes(4, "big") * (index % 50)
        signed = KEY.sign(message)
        kind = index % 7
        if kind == 1:  # a flipped signature bit
            items.append((index, bytes([signed[0] ^ 1]) + signed[1:], key, False))
        elif kind == 2:  # another key
            items.append((index, bytes(signed), other, False))
        elif kind == 3:  # a key of the wrong size
            items.append((index, bytes(signed), key[:31], False))
        elif kind == 4:  # shorter than a signature
            items.append((index, bytes(signed)[:63], key, False))
        else:
            items.append((index, bytes(signed), key, True))
    return items


@pytest.mark.parametrize("threaded", [True, False])
def test_batched_signature_checks_fail_exactly_the_bad_signatures(threaded: bool) -> None:
    items = _signed_items()
    checks: SignatureChecks[int]
    with signature_checks(threaded=threaded) as checks:
        for token, signed, key, _ in items:
            checks.add(token, signed, key)
        failed = checks.failed()
    assert failed == [token for token, _, _, good in items if not good]
    assert checks.count == len(items)


@pytest.mark.parametrize("threaded", [True, False])
async def test_awaited_signature_checks_answer_as_the_blocking_ones(threaded: bool) -> None:
    items = _signed_items()
    checks: SignatureChecks[int]
    with signature_checks(threaded=threaded) as checks:
        for token, signed, key, _ in items[:300]:
            checks.add(token, signed, key)
        first = await checks.failed_async()
        for token, signed, key, _ in items[300:]:  # the same checks go on after an answer
            checks.add(token, signed, key)
        second = await checks.failed_async()
    assert first == [token for token, _, _, good in items[:300] if not good]
    assert second == [token for token, _, _, good in items[300:] if not good]


@pytest.mark.parametrize("threaded", [True, False])
async def test_answers_come_batch_by_batch_in_the_order_queued(threaded: bool) -> None:
    items = _signed_items()
    checks: SignatureChecks[int]
    with signature_checks(threaded=threaded) as checks:
        for token, signed, key, _ in items:
            checks.add(token, signed, key)
        answers = [answer async for answer in checks.answered()]
        # Answered once: nothing of this batch is left for the next caller.
        assert [answer async for answer in checks.answered()] == []
        assert checks.failed() == []
    batch = signature_batch.BATCH
    lasts = [token for token, *_ in items][batch - 1 :: batch]
    if len(items) % batch:
        lasts.append(items[-1][0])
    assert [last for last, _ in answers] == lasts
    for index, (last, failed) in enumerate(answers):
        first = index * batch
        expected = [t for t, _, _, good in items[first : last + 1] if not good]
        assert failed == expected


@pytest.mark.skipif(not fastpath.NATIVE, reason="the compiled fast path is not used")
def test_the_compiled_batch_check_answers_as_pynacl() -> None:
    items = _signed_items()
    signed = tuple(item[1] for item in items)
    keys = tuple(item[2] for item in items)
    native = fastpath.verify_batch(signed, keys)
    assert native == signature_batch._check_here(signed, keys)
    assert list(native) == [int(good) for *_, good in items]
