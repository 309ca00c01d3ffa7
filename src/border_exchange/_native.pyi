# Types of the compiled fast path (_native.c); domain/fastpath.py configures and wraps it.
from datetime import datetime

from border_exchange.domain.envelope import Envelope

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
