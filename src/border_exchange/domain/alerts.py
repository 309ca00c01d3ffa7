"""What a gateway user writes: validated alert input, one pydantic model per alert type.

``parse_alert`` turns a mapping (from JSON or YAML) into an ``AlertInput`` or raises the
package's ``ValidationError`` whose ``problems`` name each field path and the rule broken.
Ids and times the gateway assigns (message id, issue time, and the alert id of a new
alert) are not part of the input; the expiry or review date is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

import pydantic
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from border_exchange.domain import limits
from border_exchange.domain.catalog import (
    SECTIONS,
    ActionOnHit,
    AlertType,
    HandlingCode,
    InformationReliability,
    Operation,
    Priority,
    SourceReliability,
    WarningMarker,
    is_participant_id,
)
from border_exchange.errors import ValidationError

MAX_PHOTO_BYTES: Final = limits.MAX_PHOTO_BYTES
"""The largest photo accepted (see ``domain.limits``); a larger one is refused, not re-encoded."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=8000)]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
AlertId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]


class Sex(StrEnum):
    """Sex as recorded in the identity documents."""

    MALE = "MALE"
    FEMALE = "FEMALE"
    UNKNOWN = "UNKNOWN"


class DocumentKind(StrEnum):
    """Kind of identity document."""

    PASSPORT = "PASSPORT"
    NATIONAL_ID_CARD = "NATIONAL_ID_CARD"
    DRIVING_LICENCE = "DRIVING_LICENCE"
    RESIDENCE_PERMIT = "RESIDENCE_PERMIT"
    REFUGEE_CARD = "REFUGEE_CARD"
    VOTER_CARD = "VOTER_CARD"
    TRAVEL_DOCUMENT = "TRAVEL_DOCUMENT"
    OTHER = "OTHER"


class OffenceCategory(StrEnum):
    """Category of the offence a person is wanted for."""

    HOMICIDE = "HOMICIDE"
    ARMED_ROBBERY = "ARMED_ROBBERY"
    KIDNAPPING = "KIDNAPPING"
    TRAFFICKING_IN_PERSONS = "TRAFFICKING_IN_PERSONS"
    DRUG_TRAFFICKING = "DRUG_TRAFFICKING"
    ARMS_TRAFFICKING = "ARMS_TRAFFICKING"
    SEXUAL_VIOLENCE = "SEXUAL_VIOLENCE"
    ARMED_GROUP_ACTIVITY = "ARMED_GROUP_ACTIVITY"
    TERRORISM = "TERRORISM"
    THEFT = "THEFT"
    FRAUD = "FRAUD"
    ESCAPE_FROM_CUSTODY = "ESCAPE_FROM_CUSTODY"
    OTHER = "OTHER"


class VehicleType(StrEnum):
    """Type of vehicle."""

    CAR = "CAR"
    PICKUP = "PICKUP"
    SUV = "SUV"
    TRUCK = "TRUCK"
    BUS = "BUS"
    MOTORCYCLE = "MOTORCYCLE"
    TRAILER = "TRAILER"
    OTHER = "OTHER"


class VehicleNoticeReason(StrEnum):
    """Why a vehicle is sought."""

    STOLEN = "STOLEN"
    USED_IN_CRIME = "USED_IN_CRIME"
    OF_INTEREST = "OF_INTEREST"


class HolderRole(StrEnum):
    """Relation of a person or company to a vehicle."""

    OWNER = "OWNER"
    HOLDER = "HOLDER"
    DRIVER = "DRIVER"


class IncidentType(StrEnum):
    """Kind of border incident."""

    ARMED_INCURSION = "ARMED_INCURSION"
    SMUGGLING = "SMUGGLING"
    TRAFFICKING_IN_PERSONS = "TRAFFICKING_IN_PERSONS"
    IRREGULAR_CROSSING = "IRREGULAR_CROSSING"
    CATTLE_RAIDING = "CATTLE_RAIDING"
    ATTACK_ON_POST = "ATTACK_ON_POST"
    OTHER = "OTHER"


class Severity(StrEnum):
    """Severity of a border incident."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class InvolvementRole(StrEnum):
    """Role of a person in a border incident."""

    SUSPECT = "SUSPECT"
    VICTIM = "VICTIM"
    WITNESS = "WITNESS"
    OTHER = "OTHER"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OriginalScriptName(_Model):
    """A name in its original script with its ICAO 9303 transliteration."""

    script: Annotated[str, StringConstraints(pattern=r"^[A-Z][a-z]{3}$")]
    value: Text
    transliteration: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z '<-]{0,199}$")]


class WantedPersonIdentity(_Model):
    """Section ``identity``: names, sex, birth and nationalities."""

    family_names: Annotated[list[Text], Field(min_length=1)]
    given_names: list[Text] = []
    names_at_birth: list[Text] = []
    aliases: list[Text] = []
    original_script_names: list[OriginalScriptName] = []
    sex: Sex = Sex.UNKNOWN
    date_of_birth: date | None = None
    place_of_birth: Text | None = None
    country_of_birth: Country | None = None
    nationalities: list[Country] = []


class IdentityDocument(_Model):
    """An identity document held or used by the person."""

    kind: DocumentKind
    number: Text
    issuing_country: Country
    issued_on: date | None = None
    expires_on: date | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> IdentityDocument:
        if self.issued_on and self.expires_on and self.expires_on < self.issued_on:
            raise ValueError("expires_on must not be before issued_on")
        return self


class WantedPersonDocuments(_Model):
    """Section ``documents``: identity documents."""

    documents: Annotated[list[IdentityDocument], Field(min_length=1)]


class WantedPersonDescription(_Model):
    """Section ``description``: physical description and distinguishing marks."""

    height_cm: Annotated[int, Field(ge=50, le=260)] | None = None
    build: Text | None = None
    eye_colour: Text | None = None
    hair: Text | None = None
    description: LongText | None = None
    distinguishing_marks: list[Text] = []


class WantedPersonPhoto(_Model):
    """Section ``photo``: the image bytes (base64 in JSON and YAML) and their media type."""

    media_type: Literal["image/jpeg", "image/png"]
    data: Annotated[
        bytes,
        Field(
            min_length=1,
            description=f"The image, base64 in JSON; at most {MAX_PHOTO_BYTES:,} bytes decoded.",
        ),
    ]
    taken_on: date | None = None

    @field_validator("data", mode="before")
    @classmethod
    def _base64(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise ValueError("photo data must be base64") from exc
        return value

    @field_validator("data")
    @classmethod
    def _small_enough(cls, value: bytes) -> bytes:
        if len(value) > MAX_PHOTO_BYTES:
            raise ValueError(
                f"the photo is {len(value):,} bytes, more than the limit of "
                f"{MAX_PHOTO_BYTES:,} bytes: downscale or re-encode it"
            )
        return value


class WantedPersonOffence(_Model):
    """Section ``offence``: offence, warrant and issuing authority."""

    category: OffenceCategory
    description: LongText
    warrant_reference: Text | None = None
    warrant_date: date | None = None
    issuing_authority: Text | None = None


class AlertRemarks(_Model):
    """Section ``remarks``: intelligence remarks in free text."""

    text: LongText


class AlertContact(_Model):
    """Section ``contact``: the requesting or reporting unit."""

    unit_name: Text
    phone: Annotated[str, StringConstraints(pattern=r"^\+[0-9 ]{6,20}$")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None


class VehicleNoticeVehicle(_Model):
    """Section ``vehicle``: identification of the vehicle."""

    plate: Text | None = None
    registration_country: Country | None = None
    vin: Annotated[str, StringConstraints(pattern=r"^[A-HJ-NPR-Z0-9]{11,17}$")] | None = None
    make: Text | None = None
    model: Text | None = None
    colour: Text | None = None
    year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    vehicle_type: VehicleType = VehicleType.OTHER

    @model_validator(mode="after")
    def _identifiable(self) -> VehicleNoticeVehicle:
        if self.plate is None and self.vin is None:
            raise ValueError("a plate or a VIN is required")
        return self


class VehicleNoticeEvent(_Model):
    """Section ``event``: why the vehicle is sought."""

    reason: VehicleNoticeReason
    event_date: date | None = None
    place: Text | None = None
    description: LongText | None = None


class VehicleHolder(_Model):
    """An owner or holder of the vehicle."""

    role: HolderRole
    name: Text
    date_of_birth: date | None = None
    nationality: Country | None = None
    address: Text | None = None
    phone: Text | None = None


class VehicleNoticeOwner(_Model):
    """Section ``owner``: owners and holders (personal data)."""

    holders: Annotated[list[VehicleHolder], Field(min_length=1)]


class BorderIncidentIncident(_Model):
    """Section ``incident``: what happened, when, and how serious."""

    incident_type: IncidentType
    occurred_at: AwareDatetime
    severity: Severity
    description: LongText


class BorderIncidentLocation(_Model):
    """Section ``location``: coordinates, crossing point, place name."""

    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    crossing_point: Text | None = None
    place_name: Text | None = None
    country: Country | None = None

    @model_validator(mode="after")
    def _locatable(self) -> BorderIncidentLocation:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        if self.latitude is None and self.crossing_point is None and self.place_name is None:
            raise ValueError("coordinates, a crossing point or a place name is required")
        return self


class InvolvedPerson(_Model):
    """A person involved in a border incident."""

    role: InvolvementRole
    name: Text
    sex: Sex = Sex.UNKNOWN
    date_of_birth: date | None = None
    nationality: Country | None = None


class InvolvedVehicle(_Model):
    """A vehicle involved in a border incident."""

    plate: Text | None = None
    registration_country: Country | None = None
    description: Text | None = None


class BorderIncidentInvolved(_Model):
    """Section ``involved``: persons and vehicles involved (personal data)."""

    persons: list[InvolvedPerson] = []
    vehicles: list[InvolvedVehicle] = []


class WantedPersonSections(_Model):
    """The sections of a wanted-person alert."""

    identity: WantedPersonIdentity | None = None
    documents: WantedPersonDocuments | None = None
    description: WantedPersonDescription | None = None
    photo: WantedPersonPhoto | None = None
    offence: WantedPersonOffence | None = None
    remarks: AlertRemarks | None = None
    contact: AlertContact | None = None


class VehicleNoticeSections(_Model):
    """The sections of a vehicle notice."""

    vehicle: VehicleNoticeVehicle | None = None
    event: VehicleNoticeEvent | None = None
    owner: VehicleNoticeOwner | None = None
    remarks: AlertRemarks | None = None
    contact: AlertContact | None = None


class BorderIncidentSections(_Model):
    """The sections of a border incident."""

    incident: BorderIncidentIncident | None = None
    location: BorderIncidentLocation | None = None
    involved: BorderIncidentInvolved | None = None
    remarks: AlertRemarks | None = None
    contact: AlertContact | None = None


REQUIRED_SECTIONS: Final[Mapping[AlertType, frozenset[str]]] = {
    AlertType.WANTED_PERSON: frozenset({"identity", "offence", "contact"}),
    AlertType.VEHICLE_NOTICE: frozenset({"vehicle", "event", "contact"}),
    AlertType.BORDER_INCIDENT: frozenset({"incident", "location", "contact"}),
}
"""Sections a CREATE or UPDATE must carry; a CANCEL carries none."""


def _date_to_midnight(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if isinstance(value, str) and len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        except ValueError:
            return value
    return value


class _AlertBase(_Model):
    """Header fields common to every alert type."""

    ALERT_TYPE: ClassVar[AlertType]

    origin: str
    alert_id: AlertId | None = None
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] = 1
    operation: Operation = Operation.CREATE
    expires_at: AwareDatetime
    handling_code: HandlingCode
    source_reliability: SourceReliability
    information_reliability: InformationReliability
    priority: Priority = Priority.ROUTINE
    action_on_hit: ActionOnHit
    warning_markers: tuple[WarningMarker, ...] = ()
    cancel_reason: LongText | None = None
    language: Language | None = None

    @field_validator("origin")
    @classmethod
    def _participant(cls, value: str) -> str:
        if not is_participant_id(value):
            raise ValueError("must be an ISO 3166-1 alpha-3 code or UN-<MISSION>")
        return value

    @field_validator("expires_at", mode="before")
    @classmethod
    def _review_date(cls, value: object) -> object:
        return _date_to_midnight(value)

    @field_validator("warning_markers")
    @classmethod
    def _unique_markers(cls, value: tuple[WarningMarker, ...]) -> tuple[WarningMarker, ...]:
        if len(set(value)) != len(value):
            raise ValueError("warning markers must not repeat")
        return value

    @model_validator(mode="after")
    def _lifecycle(self) -> _AlertBase:
        present = self.present_section_names()
        if self.operation is Operation.CREATE and self.version != 1:
            raise ValueError("a CREATE has version 1")
        if self.operation is not Operation.CREATE:
            if self.alert_id is None:
                raise ValueError(f"{self.operation} needs the alert_id of the alert it changes")
            if self.version < 2:
                raise ValueError(f"{self.operation} has version 2 or more")
        if self.operation is Operation.CANCEL:
            if self.cancel_reason is None:
                raise ValueError("a CANCEL needs a cancel_reason")
            if present:
                raise ValueError("a CANCEL carries no sections")
        else:
            if self.cancel_reason is not None:
                raise ValueError("cancel_reason is for CANCEL only")
            missing = sorted(REQUIRED_SECTIONS[self.ALERT_TYPE] - set(present))
            if missing:
                raise ValueError(f"{self.operation} needs sections: {', '.join(missing)}")
        return self

    def section_models(self) -> dict[str, BaseModel]:
        """The sections given, by name, in canonical order."""
        sections: BaseModel = getattr(self, "sections")  # noqa: B009 - declared by each subclass
        given = {name: getattr(sections, name) for name in SECTIONS[self.ALERT_TYPE]}
        return {name: model for name, model in given.items() if model is not None}

    def present_section_names(self) -> tuple[str, ...]:
        """Names of the sections given, in canonical order."""
        return tuple(self.section_models())

    def section_records(self) -> dict[str, dict[str, Any]]:
        """The sections given as Avro-ready records, in canonical order."""
        return {name: model.model_dump() for name, model in self.section_models().items()}


class WantedPersonAlert(_AlertBase):
    """A wanted-person alert."""

    ALERT_TYPE: ClassVar[AlertType] = AlertType.WANTED_PERSON
    alert_type: Literal[AlertType.WANTED_PERSON]
    sections: WantedPersonSections = WantedPersonSections()


class VehicleNoticeAlert(_AlertBase):
    """A vehicle notice."""

    ALERT_TYPE: ClassVar[AlertType] = AlertType.VEHICLE_NOTICE
    alert_type: Literal[AlertType.VEHICLE_NOTICE]
    sections: VehicleNoticeSections = VehicleNoticeSections()


class BorderIncidentAlert(_AlertBase):
    """A border incident report."""

    ALERT_TYPE: ClassVar[AlertType] = AlertType.BORDER_INCIDENT
    alert_type: Literal[AlertType.BORDER_INCIDENT]
    sections: BorderIncidentSections = BorderIncidentSections()


AlertInput = Annotated[
    WantedPersonAlert | VehicleNoticeAlert | BorderIncidentAlert,
    Field(discriminator="alert_type"),
]
"""Any alert input; ``alert_type`` selects the model."""

_ADAPTER: Final[TypeAdapter[WantedPersonAlert | VehicleNoticeAlert | BorderIncidentAlert]] = (
    TypeAdapter(AlertInput)
)
_TAGS: Final = frozenset(t.value for t in AlertType)


def _problem(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    if loc and loc[0] in _TAGS:
        loc = loc[1:]
    if error["type"] in {"union_tag_not_found", "union_tag_invalid"}:
        loc = ["alert_type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(loc) or '(alert)'}: {message}"


def parse_alert(
    data: Mapping[str, Any],
) -> WantedPersonAlert | VehicleNoticeAlert | BorderIncidentAlert:
    """Validate ``data`` as an alert input; raises ``ValidationError`` naming every problem."""
    try:
        return _ADAPTER.validate_python(data)
    except pydantic.ValidationError as exc:
        problems = tuple(_problem(error) for error in exc.errors())
        raise ValidationError("invalid alert", problems) from exc
