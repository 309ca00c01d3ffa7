"""Decoding arbitrary bytes raises only the package's DecodeError (12,000 examples in all)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

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
            issued_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
        messages.append(encode_envelope(envelope))
        messages.append(encode_envelope(redact(envelope, {"contact"})))
    return messages


VALID = _valid_messages()


def decodes_or_raises_decode_error(data: bytes) -> None:
    """Both envelope readers, and the generic record reader, either decode or raise DecodeError."""
    for decode in (decode_envelope, decode_envelope_generic):
        try:
            result = decode(data)
        except DecodeError:
            pass
        else:
            assert isinstance(result, Envelope)
    with contextlib.suppress(DecodeError):
        decode_record(data)


@FUZZ
@given(st.one_of(st.binary(max_size=600), st.binary(max_size=64).map(lambda b: VALID[0][:10] + b)))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    decodes_or_raises_decode_error(data)


@FUZZ
@given(st.sampled_from(VALID), st.integers(min_value=0))
def test_truncated_messages_raise_only_decode_error(message: bytes, cut: int) -> None:
    data = message[: cut % len(message)]
    decodes_or_raises_decode_error(data)


@FUZZ
@given(st.sampled_from(VALID), st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def test_bit_flipped_messages_raise_only_decode_error(message: bytes, flips: list[int]) -> None:
    data = bytearray(message)
    for flip in flips:
        position = flip % (len(data) * 8)
        data[position // 8] ^= 1 << (position % 8)
    decodes_or_raises_decode_error(bytes(data))


def test_the_fuzz_covers_at_least_ten_thousand_examples() -> None:
    assert 3 * EXAMPLES >= 10_000
