"""Feed copies as bytes: is a copy a redaction of its verified outbox copy, and its exact bytes.

The bytes of a permitted copy are spliced from the outbox copy's own: its header bytes
kept, the section list re-encoded (by the compiled fast path when it can) without the
withheld contents and salts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from border_exchange.domain.audit_values import LogRecord
from border_exchange.domain.encoding import decode_envelope_split, encode_envelope
from border_exchange.domain.envelope import Envelope, Section
from border_exchange.domain.fastpath import sections_tail as native_sections_tail
from border_exchange.domain.signing import section_digest


def copy_problem(copy: Envelope, verified: Envelope) -> str | None:
    """Why feed ``copy`` is not a redaction of ``verified`` (an outbox copy whose signature holds).

    The signed bytes (header, section names and digests, signature) must be identical;
    each section the copy carries must match its digest; redacted ones carry no salt.
    """
    if copy.header != verified.header:
        return "header differs from the signed outbox copy"
    if copy.signature != verified.signature:
        return "signature differs from the outbox copy"
    if len(copy.sections) != len(verified.sections):
        return "section list differs from the outbox copy"
    header = copy.header
    for mine, signed in zip(copy.sections, verified.sections, strict=True):
        if mine.name != signed.name or mine.digest != signed.digest:
            return f"section {mine.name}: name or digest differs from the outbox copy"
        if mine.content is None:
            if mine.salt is not None:
                return f"section {mine.name}: redacted but carries a salt"
            continue
        if mine.salt is None:
            return f"section {mine.name}: content without a salt"
        expected = section_digest(
            header.alert_id, header.message_id, mine.name, mine.salt, mine.content
        )
        if expected != mine.digest:
            return f"section {mine.name}: content does not match its signed digest"
    return None


def envelope_tail(envelope: Envelope, keep: Collection[str] | None) -> bytes:
    """The Avro bytes of the sections array and signature, keeping ``keep`` (None: as they are).

    Built by the compiled ``fastpath.sections_tail`` when the values have their usual types.
    """
    if type(envelope.sections) is tuple and type(envelope.signature) is bytes:
        tail = native_sections_tail(envelope.sections, envelope.signature, keep)
        if tail is not None:
            return tail
    return envelope_tail_python(envelope, keep)


def envelope_tail_python(envelope: Envelope, keep: Collection[str] | None) -> bytes:
    """``envelope_tail`` by fastavro: the reference of the compiled one.

    The envelope is encoded with the kept sections and without any: the bytes after the
    header are where the two part, less the empty section list and signature.
    """
    sections = tuple(
        section
        if section.content is not None
        and section.salt is not None
        and (keep is None or section.name in keep)
        else Section(section.name, section.digest, None, None)
        for section in envelope.sections
    )
    bare = encode_envelope(Envelope(envelope.header, (), b""))
    whole = encode_envelope(Envelope(envelope.header, sections, envelope.signature))
    return whole[len(bare) - len(_EMPTY_TAIL) :]


_EMPTY_TAIL: Final = b"\x00\x00"  # an empty section list, an empty signature


def redacted_bytes(value: bytes, envelope: Envelope, keep: Collection[str]) -> bytes | None:
    """The exact record value of ``envelope`` (decoded from ``value``) redacted to ``keep``.

    Built by splicing ``value``: its header bytes are kept and the section list is
    re-encoded without the withheld contents and salts, which is what
    ``encode_envelope(redact(envelope, keep))`` writes. None when ``value`` is not laid
    out as expected (the caller then compares decoded values instead).
    """
    return Splice.of(value, envelope).redacted(keep)


@dataclass(frozen=True, slots=True)
class Splice:
    """A verified outbox copy ready to be redacted: its bytes, sections and header bytes."""

    value: bytes
    envelope: Envelope
    present: frozenset[str]
    head: bytes | None
    """The bytes before the section list; None when ``value`` is not laid out as expected."""

    @classmethod
    def of(
        cls,
        value: bytes,
        envelope: Envelope,
        sections_at: int | None = None,
        present: frozenset[str] | None = None,
    ) -> Splice:
        """``value`` decoded as ``envelope``; ``sections_at`` where its section list starts.

        Without the position, the header bytes are found by encoding the section list
        and finding it at the end of ``value``. Either way a copy spliced from them
        decodes to the same header: the reader reads those bytes the same way.
        """
        if sections_at is not None:
            head: bytes | None = value[:sections_at]
        else:
            tail = envelope_tail(envelope, None)
            head = value[: len(value) - len(tail)] if value.endswith(tail) else None
        return cls(value, envelope, envelope.present_sections if present is None else present, head)

    def redacted(self, keep: Collection[str]) -> bytes | None:
        """The exact record value redacted to ``keep`` (see ``redacted_bytes``)."""
        if self.present.issubset(keep):
            return self.value
        if self.head is None:
            return None
        return self.head + envelope_tail(self.envelope, keep)


def splice_of(source: LogRecord) -> Splice:
    """The outbox copy in ``source`` decoded again, ready to redact (it decoded before)."""
    envelope, sections_at = decode_envelope_split(source.value)
    return Splice.of(source.value, envelope, sections_at)
