"""The compiled fast path gives the Python reference's results, or declines.

``fastpath.read_envelope`` and ``fastpath.checked_signing_input`` may answer None for
anything unusual (the Python code then runs), but whenever they answer, the answer must
be the Python code's, byte for byte and value for value. The reference for Avro is
fastavro (``domain/encoding.py``); for the signing input, ``domain/signing.py``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from border_exchange.adapters import name_index
from border_exchange.domain import fastpath
from border_exchange.domain.audit import AUDIT_SCHEMA, encode_audit
from border_exchange.domain.audit_splice import envelope_tail, envelope_tail_python
from border_exchange.domain.catalog import AlertType, Operation, WarningMarker
from border_exchange.domain.encoding import (
    PREFIX_SIZE,
    decode_envelope_generic,
    decode_envelope_located,
    decode_record,
    encode_envelope,
    encode_record,
)
from border_exchange.domain.envelope import Envelope, Section
from border_exchange.domain.names import Token, name_form
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import (
    _checked_signing_input_python,
    redact,
    seal,
    sign,
    signing_input,
)
from border_exchange.errors import DecodeError, SignatureError
from tests.unit.test_audit_reader import decision
from tests.unit.test_audit_reader import records as audit_records
from tests.unit.test_names import labelled

pytestmark = pytest.mark.skipif(
    not fastpath.NATIVE, reason=f"the compiled fast path is not used: {fastpath.WHY_NOT_NATIVE}"
)
KEY = SigningKey(bytes(range(32)))
PROPERTY = settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _sealed(alert_type: AlertType, **changes: object) -> Envelope:
    envelope = seal(
        sample_alert(alert_type, language="fr"),
        signing_key=KEY,
        key_id="CAF-2026-01",
        message_id="m-fast",
        # A fixed time with microseconds, as data to encode: nothing here compares it with
        # the run's clock.
        issued_at=datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
    )
    if not changes:
        return envelope
    header = dataclasses.replace(envelope.header, **changes)  # type: ignore[arg-type]
    contents = [(s.name, s.content or b"") for s in envelope.sections]
    if header.operation is Operation.CANCEL:
        contents = []
    return sign(header, contents, KEY)


VALID = [
    envelope
    for alert_type in AlertType
    for full in (_sealed(alert_type),)
    for envelope in (full, redact(full, {"contact"}), redact(full, ()))
]
VALID_BYTES = [encode_envelope(envelope) for envelope in VALID]


def read_envelope_python(data: bytes, pos: int) -> tuple[Envelope, int]:
    """What the compiled reader answers, by fastavro."""
    assert pos == PREFIX_SIZE
    return decode_envelope_located(data)


def _python(data: bytes) -> tuple[Envelope, int] | DecodeError:
    try:
        return read_envelope_python(data, PREFIX_SIZE)
    except DecodeError as exc:
        return exc


def read_audit_python(data: bytes, pos: int) -> dict[str, Any]:
    """What the compiled audit reader answers, by fastavro."""
    assert pos == PREFIX_SIZE
    return decode_record(data)[1]


def write_audit_body_python(record: dict[str, Any]) -> bytes:
    """What the compiled audit writer answers, by fastavro."""
    return encode_record(AUDIT_SCHEMA, record)[PREFIX_SIZE:]


@pytest.mark.parametrize("data", VALID_BYTES)
def test_the_compiled_reader_reads_every_valid_message_as_the_python_reader(data: bytes) -> None:
    native = fastpath.read_envelope(data, PREFIX_SIZE)
    assert native is not None
    assert native == read_envelope_python(data, PREFIX_SIZE)
    assert native[0] == decode_envelope_generic(data)
    assert type(native[0].header.issued_at) is datetime
    assert native[0].header.issued_at.tzinfo is UTC


def _agrees(data: bytes) -> None:
    native = fastpath.read_envelope(data, PREFIX_SIZE)
    if native is not None:
        assert native == _python(data)


@PROPERTY
@given(st.sampled_from(VALID_BYTES), st.lists(st.integers(min_value=0), min_size=1, max_size=3))
def test_on_bit_flips_the_compiled_reader_declines_or_agrees(data: bytes, flips: list[int]) -> None:
    mutated = bytearray(data)
    for flip in flips:
        position = PREFIX_SIZE * 8 + flip % ((len(data) - PREFIX_SIZE) * 8)
        mutated[position // 8] ^= 1 << (position % 8)
    _agrees(bytes(mutated))


@PROPERTY
@given(st.sampled_from(VALID_BYTES), st.integers(min_value=0), st.binary(max_size=8))
def test_on_cuts_and_appends_the_compiled_reader_declines_or_agrees(
    data: bytes, cut: int, tail: bytes
) -> None:
    _agrees(data[: PREFIX_SIZE + cut % (len(data) - PREFIX_SIZE)] + tail)


@PROPERTY
@given(st.binary(max_size=400))
def test_on_random_bytes_the_compiled_reader_declines_or_agrees(body: bytes) -> None:
    _agrees(VALID_BYTES[0][:PREFIX_SIZE] + body)


def test_the_compiled_reader_declines_any_position_outside_the_data() -> None:
    data = VALID_BYTES[0]
    for pos in (-1, len(data) + 1, 2**70):
        assert fastpath.read_envelope(data, pos) is None


_TEXT = st.text(max_size=300)
_MOMENT = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.just(UTC),
)


@PROPERTY
@given(
    alert_type=st.sampled_from(list(AlertType)),
    operation=st.sampled_from(list(Operation)),
    origin=_TEXT,
    alert_id=_TEXT,
    message_id=_TEXT,
    key_id=_TEXT,
    version=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    issued_at=_MOMENT,
    expires_at=_MOMENT,
    markers=st.lists(st.sampled_from(list(WarningMarker)), max_size=70),
    cancel_reason=st.none() | _TEXT,
    language=st.none() | _TEXT,
)
def test_for_any_header_both_paths_read_and_sign_the_same(
    alert_type: AlertType,
    operation: Operation,
    origin: str,
    alert_id: str,
    message_id: str,
    key_id: str,
    version: int,
    issued_at: datetime,
    expires_at: datetime,
    markers: list[WarningMarker],
    cancel_reason: str | None,
    language: str | None,
) -> None:
    envelope = _sealed(
        alert_type,
        operation=operation,
        origin=origin,
        alert_id=alert_id,
        message_id=message_id,
        key_id=key_id,
        version=version,
        issued_at=issued_at,
        expires_at=expires_at,
        warning_markers=tuple(markers),
        cancel_reason=cancel_reason,
        language=language,
    )
    data = encode_envelope(envelope)
    native = fastpath.read_envelope(data, PREFIX_SIZE)
    python = read_envelope_python(data, PREFIX_SIZE)
    assert python[0] == envelope
    assert native == python
    message = signing_input(envelope.header, envelope.sections)
    assert fastpath.checked_signing_input(envelope) == message
    assert _checked_signing_input_python(envelope) == message


@pytest.mark.parametrize("envelope", VALID)
def test_the_compiled_signing_input_is_the_python_one(envelope: Envelope) -> None:
    expected = signing_input(envelope.header, envelope.sections)
    assert fastpath.checked_signing_input(envelope) == expected
    assert _checked_signing_input_python(envelope) == expected


def _tampered(envelope: Envelope) -> list[Envelope]:
    first = envelope.sections[0]
    assert first.content is not None
    assert first.salt is not None
    rest = envelope.sections[1:]

    def with_first(section: Section) -> Envelope:
        return dataclasses.replace(envelope, sections=(section, *rest))

    other = dataclasses.replace(envelope.header, message_id="another")
    return [
        with_first(dataclasses.replace(first, content=first.content + b"\x00")),
        with_first(dataclasses.replace(first, salt=bytes(16))),
        with_first(dataclasses.replace(first, salt=first.salt[:15])),
        with_first(dataclasses.replace(first, digest=bytes(32))),
        with_first(dataclasses.replace(first, digest=first.digest[:31])),
        with_first(dataclasses.replace(first, content=None)),  # a salt without content
        with_first(dataclasses.replace(first, salt=None)),  # content without a salt
        dataclasses.replace(envelope, header=other),  # sections of another message
    ]


@pytest.mark.parametrize("alert_type", list(AlertType))
def test_the_compiled_signing_input_declines_every_section_mismatch(
    alert_type: AlertType,
) -> None:
    for envelope in _tampered(_sealed(alert_type)):
        assert fastpath.checked_signing_input(envelope) is None
        with pytest.raises(SignatureError):
            _checked_signing_input_python(envelope)


def test_the_compiled_signing_input_declines_values_of_unusual_types() -> None:
    envelope = _sealed(AlertType.VEHICLE_NOTICE)
    header = envelope.header
    odd = [
        # a str, not the enum member
        dataclasses.replace(header, alert_type="VEHICLE_NOTICE"),  # type: ignore[arg-type]
        dataclasses.replace(header, version=True),
        dataclasses.replace(header, version=2**31),
        dataclasses.replace(header, issued_at=datetime(2026, 1, 1)),  # naive
    ]
    for changed in odd:
        assert fastpath.checked_signing_input(dataclasses.replace(envelope, header=changed)) is None
    # The same moment in another time zone signs the same: both paths count microseconds.
    elsewhere = header.issued_at.astimezone(timezone(timedelta(hours=2)))
    moved = dataclasses.replace(envelope, header=dataclasses.replace(header, issued_at=elsewhere))
    assert fastpath.checked_signing_input(moved) == signing_input(header, envelope.sections)
    assert fastpath.checked_signing_input(moved) == _checked_signing_input_python(moved)


# --- audit records ----------------------------------------------------------------------------

AUDIT_VALID = encode_audit(decision())


def _audit_python(data: bytes) -> dict[str, Any] | DecodeError:
    try:
        return read_audit_python(data, PREFIX_SIZE)
    except DecodeError as exc:
        return exc


@PROPERTY
@given(audit_records)
def test_the_compiled_audit_reader_reads_any_record_as_the_python_reader(
    record: dict[str, Any],
) -> None:
    data = encode_audit(record)
    assert fastpath.read_audit(data, PREFIX_SIZE) == read_audit_python(data, PREFIX_SIZE) == record


@PROPERTY
@given(st.lists(st.integers(min_value=0), min_size=1, max_size=3), st.integers(min_value=0))
def test_on_damaged_audit_records_the_compiled_reader_declines_or_agrees(
    flips: list[int], cut: int
) -> None:
    data = bytearray(AUDIT_VALID)
    for flip in flips:
        position = PREFIX_SIZE * 8 + flip % ((len(data) - PREFIX_SIZE) * 8)
        data[position // 8] ^= 1 << (position % 8)
    for damaged in (bytes(data), AUDIT_VALID[: PREFIX_SIZE + cut % (len(data) - PREFIX_SIZE)]):
        native = fastpath.read_audit(damaged, PREFIX_SIZE)
        if native is not None:
            assert native == _audit_python(damaged)


# --- redacted section lists -------------------------------------------------------------------


@pytest.mark.parametrize("envelope", VALID)
def test_the_compiled_section_list_is_the_python_one(envelope: Envelope) -> None:
    names = [section.name for section in envelope.sections]
    for keep in (None, frozenset(), frozenset(names[:2]), set(names), tuple(names[1:])):
        native = fastpath.sections_tail(envelope.sections, envelope.signature, keep)
        assert native == envelope_tail_python(envelope, keep)
    assert encode_envelope(envelope).endswith(envelope_tail(envelope, None))


@PROPERTY
@given(audit_records)
def test_the_compiled_audit_writer_writes_any_record_as_the_python_writer(
    record: dict[str, Any],
) -> None:
    assert fastpath.write_audit(record) == write_audit_body_python(record)


def test_the_compiled_audit_writer_declines_values_of_unusual_types() -> None:
    record = decision()
    odd: list[dict[str, Any]] = [
        record | {"seq": 2**64},
        record | {"seq": 1.5},
        record | {"chain": b"bytes"},
        record | {"prev_hash": bytearray(32)},
        record | {"recorded_at": datetime(2026, 1, 1)},  # naive
        record | {"sections": "identity"},  # a string, not a list of strings
        record | {"outcomes": [{**record["outcomes"][0], "delivered": "yes"}]},
        record | {"outcomes": [{"delivered": True}]},  # no participant
        {key: value for key, value in record.items() if key != "chain"},
    ]
    for changed in odd:
        assert fastpath.write_audit(changed) is None
    # Missing optional fields, tuples for lists and a 0/1 delivered write as in Python.
    loose = {key: value for key, value in record.items() if key != "issued_at"}
    loose["sections"] = tuple(record["sections"])
    loose["outcomes"] = [{**record["outcomes"][1], "delivered": 0}]
    assert fastpath.write_audit(loose) == write_audit_body_python(loose)


# -- the name index's keys ------------------------------------------------------------

# Letters that make the key rules work: digraphs (ch, sh, tch, kh, ou, ph, x, ...),
# doubled letters, a mute final e, the abd- prefixes, digits; accented and Arabic letters
# and separators, so that names of several tokens, other scripts and joins come up.
_NAME_PIECES = st.sampled_from(
    ["a", "b", "c", "d", "e", "h", "i", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u",
     "v", "w", "x", "y", "z", "q", "j", "g", "f", "ch", "sh", "tch", "kh", "ou", "oo", "ph",
     "abd", "abdel", "abdoul", "abdu", "el", "al", "ibn", "ll", "ee", "7", "é", "è", "ï",
     "محمد", "عبد", "ال", "ر", "ΑΛ", "Ж", " ", " ", "-", "'", "’"]
)  # fmt: skip


@PROPERTY
@given(st.lists(_NAME_PIECES, max_size=14).map("".join))
def test_the_compiled_name_keys_are_the_python_ones(written: str) -> None:
    form = name_form(written)
    compiled = fastpath.name_key_rows(form.tokens, 12, 3)
    assert compiled is not None or not form.tokens or any(len(t.key) > 48 for t in form.tokens)
    if compiled is not None:
        assert compiled == name_index.key_rows(form, 12, 3)


def test_the_compiled_name_keys_are_the_python_ones_on_the_labelled_set() -> None:
    written = {name for pair in labelled() for name in (pair.query, pair.name)}
    assert len(written) > 300
    for name in sorted(written):
        form = name_form(name)
        assert fastpath.name_key_rows(form.tokens, 1, 0) == name_index.key_rows(form, 1, 0), name


def test_the_compiled_name_keys_decline_what_is_not_the_plain_case() -> None:
    plain = name_form("Mahamat Abdelkarim").tokens
    assert fastpath.name_key_rows(plain, 1, 0) is not None
    long_token = Token("a" * 60, "a" * 60, "", True)
    odd_key = Token("ngo", "ngô", "ng", True)  # keys are [0-9a-z] only; anything else declines
    for tokens in ((long_token,), (*plain, odd_key), list(plain)):
        assert fastpath.name_key_rows(tokens, 1, 0) is None  # type: ignore[arg-type]  # a list
    assert fastpath.name_key_rows(plain, "1", 0) is None  # type: ignore[arg-type]  # not an int
