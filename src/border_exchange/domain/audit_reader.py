"""The current audit record layout, read by the compiled fast path, the auditor's hot path.

The compiled reader (``fastpath.read_audit``) walks the one layout of ``bx.AuditRecord``
(the version whose fingerprint is ``AUDIT_FINGERPRINT``) and builds the dict fastavro
builds; whatever it declines is read by fastavro (``encoding.decode_body``), the
reference, and records of any other version by ``decode_record``. A test checks both
paths give identical records. Malformed bytes raise only ``DecodeError``.
"""

from __future__ import annotations

from typing import Any, Final

from border_exchange.domain.encoding import decode_body
from border_exchange.domain.fastpath import read_audit as native_read

AUDIT_FINGERPRINT: Final = bytes.fromhex("9eba8176729c68b8")
"""Fingerprint of the audit record schema the compiled reader implements (checked by a test)."""


def read_audit(data: bytes, pos: int) -> dict[str, Any]:
    """The audit record whose Avro body starts at ``pos`` of ``data`` (current schema only)."""
    record = native_read(data, pos)
    if record is not None:
        return record
    return decode_body(AUDIT_FINGERPRINT, data, pos)
