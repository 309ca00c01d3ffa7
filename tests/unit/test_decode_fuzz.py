"""Decoding arbitrary bytes raises only the package's DecodeError (12,000 examples in all)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import (
    decode_envelope,
    decode_envelope_generic,
    decode_record,
    encode_envelope,
)
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import redact, seal
from border_exchange.errors import DecodeError
from tests.clock import days

EXAMPLES = 4000
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _valid_messages() -> list[bytes]:
    messages = []
    for alert_type in AlertType:
        envelope = seal(
            sample_alert(alert_type, language="fr"),
            signing_key=SigningKey(bytes(32)),
            key_id="CAF-2026-01",
            message_id="fuzz",
            issued_at=days(-1),
        )
        messages.append(encode_envelope(envelope))
        messages.append(encode_envelope(redact(envelope, {"contact"})))
    return messages


VALID = _valid_messages()


CALLS = [0]
"""Inputs checked so far: each test counts the examples it really ran."""


def decodes_or_raises_decode_error(data: bytes) -> None:
    """Both envelope readers, and the generic record reader, either decode or raise DecodeError."""
    CALLS[0] += 1
    for decode in (decode_envelope, decode_envelope_generic):
        try:
            result = decode(data)
        except DecodeError:
            pass
        else:
            assert isinstance(result, Envelope)
    with contextlib.suppress(DecodeError):
        decode_record(data)


def examples_run(fuzz: Callable[[], None]) -> int:
    """Run the hypothesis test ``fuzz`` and return how many inputs it checked."""
    before = CALLS[0]
    fuzz()
    return CALLS[0] - before


@FUZZ
@given(st.one_of(st.binary(max_size=600), st.binary(max_size=64).map(lambda b: VALID[0][:10] + b)))
def _random_bytes(data: bytes) -> None:
    decodes_or_raises_decode_error(data)


@FUZZ
@given(st.sampled_from(VALID), st.integers(min_value=0))
def _truncated(message: bytes, cut: int) -> None:
    decodes_or_raises_decode_error(message[: cut % len(message)])


@FUZZ
@given(st.sampled_from(VALID), st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def _bit_flipped(message: bytes, flips: list[int]) -> None:
    data = bytearray(message)
    for flip in flips:
        position = flip % (len(data) * 8)
        data[position // 8] ^= 1 << (position % 8)
    decodes_or_raises_decode_error(bytes(data))


# Each test runs its EXAMPLES inputs, and counts them: 3 x 4,000 = 12,000 in all.


def test_random_bytes_raise_only_decode_error() -> None:
    assert examples_run(_random_bytes) >= EXAMPLES


def test_truncated_messages_raise_only_decode_error() -> None:
    assert examples_run(_truncated) >= EXAMPLES


def test_bit_flipped_messages_raise_only_decode_error() -> None:
    assert examples_run(_bit_flipped) >= EXAMPLES
