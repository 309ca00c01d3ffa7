"""The compiled fast path: reading envelopes and audit records, the checked signing input.

``_native.c`` does, in C, what fastavro does for the current envelope and audit record
layouts (``encoding.decode_envelope_generic``, ``encoding.decode_body``,
``encoding.encode_record``; the section list of a redacted copy too) and what
``signing.verify`` does before the signature check, for the usual well-formed value
only: whenever anything is unusual it answers None and the Python code runs, which stays
the reference and gives the precise error. It also checks signatures in batches without
the GIL (libsodium, for ``signature_batch``), computes Kafka's murmur2 of a key
(``partitioning.murmur2`` and aiokafka's are the reference) and the post's name-index
keys of a name's tokens (``names.token_keys`` is the reference).

Verification is the router's and the auditor's main cost; the Python code around it
cost about as much again, and this brings it to a few percent
(``bench/bench_contract.py``).

The extension is optional. When it was not built, cannot be imported, is a stale build
of another interface version, or ``BX_NO_NATIVE`` is set (to any value but ``0`` or
empty), every function here declines (answers None) and the Python code runs; a warning
says so once, at import.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Collection
from dataclasses import fields
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Final

from border_exchange.domain.catalog import CODE_LISTS
from border_exchange.domain.envelope import Envelope, Header, Section
from border_exchange.domain.names import Token

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
NO_NATIVE_ENV: Final = "BX_NO_NATIVE"
"""Set (to anything but ``0`` or empty) to run the pure-Python reference, as without C."""
INTERFACE: Final = 3
"""The interface version of ``_native.c`` this module drives (its ``NATIVE_INTERFACE``)."""


def _load_native() -> tuple[ModuleType | None, str | None]:
    """The compiled module, or None and why it is not used."""
    if os.environ.get(NO_NATIVE_ENV, "") not in ("", "0"):
        return None, f"{NO_NATIVE_ENV} is set"
    try:
        from border_exchange import _native
    except ImportError as exc:
        return None, f"it is not built or does not load ({exc})"
    if getattr(_native, "INTERFACE", None) != INTERFACE:
        found = getattr(_native, "INTERFACE", 1)
        return None, f"its build is stale (interface {found}, {INTERFACE} needed): reinstall"
    return _native, None


_NATIVE, WHY_NOT_NATIVE = _load_native()
NATIVE: Final = _NATIVE is not None
"""Whether the compiled fast path runs; when not, ``WHY_NOT_NATIVE`` says why."""
if _NATIVE is None:
    warnings.warn(
        f"border_exchange: the compiled fast path is not used because {WHY_NOT_NATIVE}; "
        "the pure-Python reference runs (same results, slower)",
        RuntimeWarning,
        stacklevel=2,
    )


# The fields in the order _native.c numbers them. The C code sets every slot by name, so
# a field added to one of these classes must be added here and in _native.c.
HEADER_FIELDS: Final = (
    "origin",
    "alert_type",
    "alert_id",
    "version",
    "message_id",
    "operation",
    "issued_at",
    "expires_at",
    "handling_code",
    "source_reliability",
    "information_reliability",
    "priority",
    "action_on_hit",
    "warning_markers",
    "cancel_reason",
    "key_id",
    "schema_fingerprint",
    "language",
)
_SECTION: Final = ("name", "digest", "salt", "content")
_ENVELOPE: Final = ("header", "sections", "signature")

for _cls, _expected in ((Header, HEADER_FIELDS), (Section, _SECTION), (Envelope, _ENVELOPE)):
    if {field.name for field in fields(_cls)} != set(_expected):
        raise RuntimeError(f"_native.c does not know the fields of {_cls.__name__}")

# The vocabularies in the order _native.c indexes them; each tuple is in the symbol order
# of its Avro enum (the envelope reader's test holds the two to the schema).
VOCABULARIES: Final = tuple(tuple(code_list) for code_list in CODE_LISTS)

AUDIT_FIELDS: Final = (
    "chain", "seq", "prev_hash", "kind", "recorded_at", "source_offset", "message_id",
    "alert_id", "version", "origin", "alert_type", "operation", "handling_code",
    "action_on_hit", "issued_at", "expires_at", "sections", "agreement_set",
    "agreement_label", "earlier_recipients", "outcomes", "quarantine_reason",
    "quarantine_detail", "checkpoint_key_id", "checkpoint_signature",
)  # fmt: skip
"""The audit record's fields in schema order, as the compiled reader and writer number them."""
OUTCOME_FIELDS: Final = ("participant", "delivered", "sections", "reason", "agreement_id", "basis")


def _decline(*_: object) -> None:
    """Without the compiled module every shortcut declines: the Python code runs."""


def _verify_batch_unavailable(signed: tuple[bytes, ...], keys: tuple[bytes, ...]) -> bytes:
    raise RuntimeError(f"verify_batch needs the compiled fast path ({WHY_NOT_NATIVE})")


if _NATIVE is not None:
    _NATIVE.configure(
        Header, HEADER_FIELDS, Section, _SECTION, Envelope, _ENVELOPE, VOCABULARIES, EPOCH
    )
    _NATIVE.configure_audit(AUDIT_FIELDS, OUTCOME_FIELDS)

read_envelope: Final[Callable[[bytes, int], tuple[Envelope, int] | None]] = (
    _NATIVE.read_envelope if _NATIVE else _decline
)
"""``(envelope, sections_at)`` of the current layout at ``pos``, else None (read in Python)."""

checked_signing_input: Final[Callable[[Envelope], bytes | None]] = (
    _NATIVE.checked_signing_input if _NATIVE else _decline
)
"""The signing input when every present section matches its digest, else None.

On None, ``signing.verify`` runs its Python path, which raises the precise error."""

sections_tail: Final[
    Callable[[tuple[Section, ...], bytes, Collection[str] | None], bytes | None]
] = _NATIVE.sections_tail if _NATIVE else _decline
"""The Avro bytes of a section list and signature, keeping the contents of ``keep``, or None."""

read_audit: Final[Callable[[bytes, int], dict[str, Any] | None]] = (
    _NATIVE.read_audit if _NATIVE else _decline
)
"""The audit record (a dict as fastavro builds it) of the current layout at ``pos``, or None."""

write_audit: Final[Callable[[dict[str, Any]], bytes | None]] = (
    _NATIVE.write_audit if _NATIVE else _decline
)
"""The Avro body of an audit record (a dict), or None: write it in Python."""

key_hash: Final[Callable[[bytes], int | None]] = _NATIVE.key_hash if _NATIVE else _decline
"""Kafka's murmur2 of a key as its default partitioner takes it (& 0x7fffffff); None: not bytes."""

name_key_rows: Final[
    Callable[[tuple[Token, ...], int, int], list[tuple[str, int, int, int]] | None]
] = _NATIVE.name_key_rows if _NATIVE else _decline
"""``(key, alert, number, token_no)`` for every key of ``names.token_keys`` of the tokens
(each token's keys sorted), as ``name_index.rows`` makes them; None: compute in Python."""

verify_batch: Final[Callable[[tuple[bytes, ...], tuple[bytes, ...]], bytes]] = (
    _NATIVE.verify_batch if _NATIVE else _verify_batch_unavailable
)
"""One byte per (signature || message, key), 1 when it verifies, checked without the GIL.

Only with the compiled module (``NATIVE``); ``signature_batch`` checks on the calling
thread with PyNaCl otherwise."""
