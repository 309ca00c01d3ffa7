"""The compiled fast path: reading envelopes and audit records, the checked signing input.

``_native.c`` does, in C, what ``envelope_reader._read``, ``audit_reader._read``,
``audit_writer.write_audit_body``, ``audit_splice.envelope_tail`` and ``signing.verify``
do before the signature check,
for the usual well-formed value only: whenever anything is unusual it answers None and
the Python code runs, which stays the reference and gives the precise error.

Verification is the router's and the auditor's main cost; the Python code around it
cost about as much again, and this brings it to a few percent
(``bench/bench_contract.py``). ``_native.c`` also checks signatures in batches without
the GIL, for ``signature_batch``.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Final

from border_exchange import _native
from border_exchange.domain.catalog import (
    ActionOnHit,
    AlertType,
    HandlingCode,
    InformationReliability,
    Operation,
    Priority,
    SourceReliability,
    WarningMarker,
)
from border_exchange.domain.envelope import Envelope, Header, Section

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


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
_native.configure(
    Header,
    HEADER_FIELDS,
    Section,
    _SECTION,
    Envelope,
    _ENVELOPE,
    (
        tuple(AlertType),
        tuple(Operation),
        tuple(HandlingCode),
        tuple(SourceReliability),
        tuple(InformationReliability),
        tuple(Priority),
        tuple(ActionOnHit),
        tuple(WarningMarker),
    ),
    EPOCH,
)

read_envelope: Final = _native.read_envelope
"""``(envelope, sections_at)`` of the current layout at ``pos``, else None (read in Python)."""

checked_signing_input: Final = _native.checked_signing_input
"""The signing input when every present section matches its digest, else None.

On None, ``signing.verify`` runs its Python path, which raises the precise error."""

sections_tail: Final = _native.sections_tail
"""The Avro bytes of a section list and signature, keeping the contents of ``keep``, or None."""

AUDIT_FIELDS: Final = (
    "chain", "seq", "prev_hash", "kind", "recorded_at", "source_offset", "message_id",
    "alert_id", "version", "origin", "alert_type", "operation", "handling_code",
    "action_on_hit", "issued_at", "expires_at", "sections", "agreement_set",
    "agreement_label", "earlier_recipients", "outcomes", "quarantine_reason",
    "quarantine_detail", "checkpoint_key_id", "checkpoint_signature",
)  # fmt: skip
"""The audit record's fields in schema order, as the compiled reader and writer number them."""

_native.configure_audit(
    AUDIT_FIELDS, ("participant", "delivered", "sections", "reason", "agreement_id", "basis")
)

read_audit: Final = _native.read_audit
"""The audit record (a dict as fastavro builds it) of the current layout at ``pos``, or None."""

write_audit: Final = _native.write_audit
"""The Avro body of an audit record (a dict), or None: write it in Python."""

key_hash: Final = _native.key_hash
"""Kafka's murmur2 of a key as its default partitioner takes it (& 0x7fffffff); None: not bytes."""
