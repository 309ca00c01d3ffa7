"""The shared vocabulary of the exchange: alert types, their sections, and the header code lists.

Every component (schemas, signing, policy, posts) names types and sections through
this module, so that a section an agreement lists is a section an alert can carry.
"""

from __future__ import annotations

import re
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class AlertType(StrEnum):
    """The kinds of alert the exchange carries."""

    WANTED_PERSON = "WANTED_PERSON"
    VEHICLE_NOTICE = "VEHICLE_NOTICE"
    BORDER_INCIDENT = "BORDER_INCIDENT"


class Operation(StrEnum):
    """Where a message stands in its alert's lifecycle."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    CANCEL = "CANCEL"


class HandlingCode(StrEnum):
    """How far the receiver may use the information onward, least restrictive first.

    H0: may be used by any police recipient, including in judicial proceedings.
    H1: not to be used in judicial proceedings without the originator's consent.
    H2: not to be passed on beyond the receiving service without the originator's consent.
    H3: restricted to the named recipients; any further use needs the originator's consent.
    """

    H0 = "H0"
    H1 = "H1"
    H2 = "H2"
    H3 = "H3"

    @property
    def rank(self) -> int:
        """Position on the scale, 0 being the least restrictive."""
        return int(self.value[1])


class SourceReliability(StrEnum):
    """Reliability of the source (A: reliable, B: mostly, C: not, X: cannot be judged)."""

    A = "A"
    B = "B"
    C = "C"
    X = "X"


class InformationReliability(StrEnum):
    """Reliability of the information (1: known true ... 4: cannot be judged)."""

    KNOWN_TRUE = "1"
    KNOWN_TO_SOURCE = "2"
    NOT_KNOWN_TO_SOURCE = "3"
    CANNOT_BE_JUDGED = "4"


class Priority(StrEnum):
    """How fast the receiver is asked to act."""

    ROUTINE = "ROUTINE"
    PRIORITY = "PRIORITY"
    URGENT = "URGENT"


class ActionOnHit(StrEnum):
    """What an officer who finds the subject is asked to do."""

    ARREST = "ARREST"
    LOCATE = "LOCATE"
    DISCREET_CHECK = "DISCREET_CHECK"
    SPECIFIC_CHECK = "SPECIFIC_CHECK"
    SEIZE = "SEIZE"
    REPORT_ONLY = "REPORT_ONLY"


class WarningMarker(StrEnum):
    """Officer-safety and handling warnings carried in the header."""

    ARMED = "ARMED"
    VIOLENT = "VIOLENT"
    ESCAPE_RISK = "ESCAPE_RISK"
    SUICIDE_RISK = "SUICIDE_RISK"
    EXPLOSIVES = "EXPLOSIVES"
    PUBLIC_HEALTH_RISK = "PUBLIC_HEALTH_RISK"
    ARMED_GROUP_MEMBER = "ARMED_GROUP_MEMBER"
    IDENTITY_MISUSED = "IDENTITY_MISUSED"


CODE_LISTS: Final[tuple[type[StrEnum], ...]] = (
    AlertType,
    Operation,
    HandlingCode,
    SourceReliability,
    InformationReliability,
    Priority,
    ActionOnHit,
    WarningMarker,
)
"""Every code list an envelope header carries, in one fixed order (the compiled fast path
indexes them by it)."""


class ParticipantKind(StrEnum):
    """A national police service or a UN police component."""

    NATIONAL_SERVICE = "NATIONAL_SERVICE"
    UN_COMPONENT = "UN_COMPONENT"


SECTIONS: Final[MappingProxyType[AlertType, tuple[str, ...]]] = MappingProxyType(
    {
        AlertType.WANTED_PERSON: (
            "identity",  # names, aliases, original script, sex, birth, nationalities
            "documents",  # identity documents
            "description",  # physical description and distinguishing marks
            "photo",
            "offence",  # offence category and description, warrant and issuing authority
            "remarks",  # intelligence remarks
            "contact",  # the requesting unit
        ),
        AlertType.VEHICLE_NOTICE: (
            "vehicle",  # plate, country, VIN, make, model, colour, year, type
            "event",  # reason, date of theft or event, description
            "owner",  # owner or holder: personal data
            "remarks",
            "contact",
        ),
        AlertType.BORDER_INCIDENT: (
            "incident",  # type, time, severity, description
            "location",  # coordinates, crossing point, place name
            "involved",  # persons and vehicles involved: personal data
            "remarks",
            "contact",  # the reporting unit
        ),
    }
)
"""The sections of each alert type, in their canonical (signing) order."""


PARTICIPANT_ID_PATTERN: Final = re.compile(r"^(?:[A-Z]{3}|UN-[A-Z]{3,12})$")
"""A participant id: an ISO 3166-1 alpha-3 code, or ``UN-`` and a mission acronym."""


def sections_of(alert_type: AlertType) -> tuple[str, ...]:
    """The sections an alert of ``alert_type`` can carry, in canonical order."""
    return SECTIONS[alert_type]


def is_participant_id(value: str) -> bool:
    """Whether ``value`` is a well-formed participant id."""
    return PARTICIPANT_ID_PATTERN.fullmatch(value) is not None
