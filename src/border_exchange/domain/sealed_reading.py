"""What a recipient reads of a verified message: clear sections decoded, sealed ones opened.

A section in clear (a record written before encryption, or by an origin that does not
encrypt) is decoded as before. A sealed section is opened with the recipient's private
encryption keys (``domain.section_seal``) and its plaintext decoded; a section that does
not open, or whose plaintext is not its section's record, is refused with a reason and the
other sections are kept: the origin's signature covers each section on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from border_exchange.domain.envelope import Envelope
from border_exchange.domain.section_seal import (
    RecipientPrivateKey,
    SectionContext,
    SectionOpener,
    is_sealed,
    recipients_of,
)
from border_exchange.domain.signing import decode_section
from border_exchange.errors import DecodeError, SectionError, SectionProblem


@dataclass(frozen=True, slots=True)
class SectionsRead:
    """The decoded sections a recipient can read, and the refused ones with their reasons."""

    sections: Mapping[str, dict[str, Any]]
    refused: Mapping[str, str]
    """Section name to ``REASON: detail``."""
    section_keys: Mapping[str, tuple[str, bytes]]
    """Section name to (encryption key id it was wrapped to, section key), for sealed ones."""


def read_sections(
    envelope: Envelope, participant: str, private_keys: Sequence[RecipientPrivateKey] = ()
) -> SectionsRead:
    """Every present section of ``envelope`` (already verified) that ``participant`` reads."""
    header = envelope.header
    sections: dict[str, dict[str, Any]] = {}
    refused: dict[str, str] = {}
    keys: dict[str, tuple[str, bytes]] = {}
    present = envelope.contents
    opener = SectionOpener(participant, tuple(private_keys))
    for section in envelope.sections:
        content = section.content
        if content is None:
            continue
        name = section.name
        if not is_sealed(content):
            sections[name] = decode_section(header.alert_type, name, content)
            continue
        context = SectionContext(
            header.origin, header.alert_type, header.alert_id, header.version,
            header.message_id, name,
        )  # fmt: skip
        try:
            opened = opener.open(context, content, present)
            sections[name] = decode_section(header.alert_type, name, opened.plaintext)
        except SectionError as exc:
            refused[name] = f"{exc.reason}: {exc}"
            continue
        except DecodeError as exc:
            refused[name] = f"{SectionProblem.MALFORMED}: section {name}: {exc}"
            continue
        keys[name] = (opened.key_id, opened.section_key)
    return SectionsRead(
        MappingProxyType(sections), MappingProxyType(refused), MappingProxyType(keys)
    )


def wrapped_key_ids(envelope: Envelope, participant: str) -> frozenset[str]:
    """The encryption key ids of ``participant`` that the present sealed sections of
    ``envelope`` are wrapped to: the private keys needed to open them again."""
    found: set[str] = set()
    present = envelope.contents
    for content in present.values():
        if content is not None and is_sealed(content):
            found.update(
                key_id for who, key_id in recipients_of(content, present) if who == participant
            )
    return frozenset(found)
