"""The alert message as values: a signed header, sections present or redacted, a signature."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

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

DIGEST_SIZE: Final = 32
SALT_SIZE: Final = 16
FINGERPRINT_SIZE: Final = 8


@dataclass(frozen=True, slots=True)
class Header:
    """Everything the origin signs about a message besides its sections."""

    origin: str
    alert_type: AlertType
    alert_id: str
    version: int
    message_id: str
    operation: Operation
    issued_at: datetime
    expires_at: datetime
    handling_code: HandlingCode
    source_reliability: SourceReliability
    information_reliability: InformationReliability
    priority: Priority
    action_on_hit: ActionOnHit
    warning_markers: tuple[WarningMarker, ...]
    cancel_reason: str | None
    key_id: str
    schema_fingerprint: bytes
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """One section: its digest always; its salt and content unless redacted."""

    name: str
    digest: bytes
    salt: bytes | None
    content: bytes | None

    @property
    def redacted(self) -> bool:
        """Whether the content (and salt) were removed, leaving only the digest."""
        return self.content is None

    def without_content(self) -> Section:
        """This section redacted: name and digest only."""
        return Section(self.name, self.digest, None, None)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A signed alert message as it travels."""

    header: Header
    sections: tuple[Section, ...]
    signature: bytes

    @property
    def section_names(self) -> tuple[str, ...]:
        """Names of all sections, present or redacted, in signed order."""
        return tuple(section.name for section in self.sections)

    @property
    def present_sections(self) -> frozenset[str]:
        """Names of the sections whose content is present."""
        return frozenset(s.name for s in self.sections if s.content is not None)

    @property
    def contents(self) -> dict[str, bytes | None]:
        """Each section's content by name, None where redacted (a sealed section finds
        the section that carries its group's key here)."""
        return {section.name: section.content for section in self.sections}

    def section(self, name: str) -> Section | None:
        """The section called ``name``, or None when the message has none."""
        for section in self.sections:
            if section.name == name:
                return section
        return None
