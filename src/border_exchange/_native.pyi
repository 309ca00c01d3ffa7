# Types of the compiled fast path (_native.c); domain/fastpath.py configures and wraps it.
from collections.abc import Collection
from datetime import datetime
from typing import Any

from border_exchange.domain.envelope import Envelope, Section
from border_exchange.domain.names import Token

INTERFACE: int

def configure(
    header_type: type,
    header_fields: tuple[str, ...],
    section_type: type,
    section_fields: tuple[str, ...],
    envelope_type: type,
    envelope_fields: tuple[str, ...],
    vocabularies: tuple[tuple[str, ...], ...],
    epoch: datetime,
    /,
) -> None: ...
def read_envelope(data: bytes, pos: int, /) -> tuple[Envelope, int] | None: ...
def checked_signing_input(envelope: Envelope, /) -> bytes | None: ...
def verify_batch(signed: tuple[bytes, ...], keys: tuple[bytes, ...], /) -> bytes: ...
def sections_tail(
    sections: tuple[Section, ...], signature: bytes, keep: Collection[str] | None, /
) -> bytes | None: ...
def configure_audit(record_fields: tuple[str, ...], outcome_fields: tuple[str, ...], /) -> None: ...
def read_audit(data: bytes, pos: int, /) -> dict[str, Any] | None: ...
def write_audit(record: dict[str, Any], /) -> bytes | None: ...
def key_hash(key: bytes, /) -> int | None: ...
def name_key_rows(
    tokens: tuple[Token, ...], alert: int, number: int, /
) -> list[tuple[str, int, int, int]] | None: ...
