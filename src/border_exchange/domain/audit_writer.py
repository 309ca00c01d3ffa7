"""The current ``bx.AuditRecord`` layout, written by the compiled fast path (router hot path).

The compiled writer (``fastpath.write_audit``) writes exactly the bytes fastavro writes
(Avro's binary encoding is canonical), several times faster, for a dict whose values have
their usual types; anything else is written by fastavro, the reference. It is used only
while the committed schema is the one it was written for (``audit.encode_audit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from border_exchange.domain.encoding import PREFIX_SIZE, encode_record
from border_exchange.domain.fastpath import write_audit as native_write


def write_audit_body(record: Mapping[str, Any]) -> bytes:
    """The Avro binary body of an audit record (without the single-object prefix)."""
    if type(record) is dict:
        body = native_write(record)
        if body is not None:
            return body
    return encode_record("bx.AuditRecord", record)[PREFIX_SIZE:]
