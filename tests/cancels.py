"""A cancel of an alert message, signed as its origin would sign it, for tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nacl.signing import SigningKey

from border_exchange.domain.catalog import Operation
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.signing import sign


def cancel_of(
    envelope: Envelope, key: SigningKey, reason: str, message_id: str, **header: Any
) -> Envelope:
    """The next version of ``envelope``'s alert, a CANCEL for ``reason`` with no sections,
    as message ``message_id``, signed with ``key``; ``header`` changes other fields."""
    cancelled = replace(
        envelope.header,
        version=envelope.header.version + 1,
        operation=Operation.CANCEL,
        message_id=message_id,
        cancel_reason=reason,
        **header,
    )
    return sign(cancelled, (), key)
