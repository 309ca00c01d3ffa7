"""What a border post searches by: normalised plates, VINs, document numbers and names.

Plates, VINs and document numbers match regardless of case, spaces, dashes and dots.
Names are matched by ``domain.names`` against each of the person's names (the civil
name, a name at birth, an alias, a name in original script or its transliteration):
across spellings, transliterations, scripts, name order and one typo. The functions
here are pure; the store keeps their output in its search tables.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.names import NameForm, match, name_form

MAX_QUERY_CHARS: Final = 200
"""The longest query a post accepts (any kind); a longer one is refused, not truncated."""

_NOT_ALNUM: Final = re.compile(r"[^0-9A-Z]")
_SUSPECT: Final = "SUSPECT"


def fold(text: str) -> str:
    """``text`` without accents or other combining marks, case-folded."""
    if text.isascii():
        return text.casefold()  # what the normalisations below leave of ASCII text
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", stripped).casefold()


def normalise_plate(text: str) -> str:
    """A registration plate as compared: upper case, letters and digits only."""
    return _NOT_ALNUM.sub("", fold(text).upper())


def normalise_vin(text: str) -> str:
    """A VIN as compared: upper case, letters and digits only."""
    return _NOT_ALNUM.sub("", fold(text).upper())


def normalise_document(text: str) -> str:
    """An identity document number as compared: upper case, letters and digits only."""
    return _NOT_ALNUM.sub("", fold(text).upper())


@dataclass(frozen=True, slots=True)
class PersonName:
    """One name under which a person is flagged, as written by the origin."""

    person: int
    written: str
    date_of_birth: date | None

    @property
    def form(self) -> NameForm:
        """The name as the matcher compares it."""
        return name_form(self.written)


@dataclass(frozen=True, slots=True)
class SearchKeys:
    """Everything an alert can be found by."""

    plates: frozenset[str] = frozenset()
    vins: frozenset[str] = frozenset()
    documents: frozenset[str] = frozenset()
    names: tuple[PersonName, ...] = ()


def _date(value: object) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _names_of_identity(identity: Mapping[str, Any]) -> list[str]:
    given = list(identity.get("given_names") or [])
    names: list[str] = []
    family = identity.get("family_names") or []
    if family or given:
        names.append(" ".join([*family, *given]))
    for birth_name in identity.get("names_at_birth") or []:
        names.append(" ".join([birth_name, *given]))
    names.extend(identity.get("aliases") or [])
    for original in identity.get("original_script_names") or []:
        names.append(original.get("value") or "")
        names.append(original.get("transliteration") or "")
    return [name for name in names if name_form(name).tokens]


def search_keys(alert_type: AlertType, sections: Mapping[str, Mapping[str, Any]]) -> SearchKeys:
    """The search keys of an alert from its present (decoded) sections.

    Wanted persons are found by every name and identity document; vehicle notices by
    plate and VIN; border incidents by the plates of the vehicles and the names of the
    suspects involved (victims and witnesses are not flagged).
    """
    plates: set[str] = set()
    vins: set[str] = set()
    documents: set[str] = set()
    names: list[PersonName] = []
    if alert_type is AlertType.WANTED_PERSON:
        identity = sections.get("identity")
        if identity is not None:
            born = _date(identity.get("date_of_birth"))
            names.extend(PersonName(0, n, born) for n in _names_of_identity(identity))
        for document in (sections.get("documents") or {}).get("documents") or []:
            documents.add(normalise_document(document.get("number") or ""))
    elif alert_type is AlertType.VEHICLE_NOTICE:
        vehicle = sections.get("vehicle") or {}
        if vehicle.get("plate"):
            plates.add(normalise_plate(vehicle["plate"]))
        if vehicle.get("vin"):
            vins.add(normalise_vin(vehicle["vin"]))
    else:
        involved = sections.get("involved") or {}
        for vehicle in involved.get("vehicles") or []:
            if vehicle.get("plate"):
                plates.add(normalise_plate(vehicle["plate"]))
        for index, person in enumerate(involved.get("persons") or []):
            if person.get("role") == _SUSPECT:
                written = person.get("name") or ""
                if name_form(written).tokens:
                    names.append(PersonName(index, written, _date(person.get("date_of_birth"))))
    return SearchKeys(
        frozenset(p for p in plates if p),
        frozenset(v for v in vins if v),
        frozenset(d for d in documents if d),
        tuple(names),
    )


def dob_agrees(wanted: date | None, known: date | None) -> bool:
    """Whether a date of birth asked for fits one on record (an unknown one always fits)."""
    return wanted is None or known is None or wanted == known


def name_matches(query: str, names: Iterable[PersonName], dob: date | None = None) -> bool:
    """Whether ``query`` matches one of ``names`` (and ``dob``, where the name has one)."""
    wanted = name_form(query)
    return any(
        dob_agrees(dob, name.date_of_birth) and match(wanted, name.form) is not None
        for name in names
    )


class SearchKind(StrEnum):
    """What a post searches by."""

    NAME = "name"
    PLATE = "plate"
    VIN = "vin"
    DOCUMENT = "document"


class QueryProblem(StrEnum):
    """Why a query was refused before searching (each has a label in both languages)."""

    EMPTY = "query_empty"
    TOO_LONG = "query_too_long"
    BAD_DOB = "query_bad_dob"
    DOB_WITHOUT_NAME = "query_dob_without_name"
    UNKNOWN_KIND = "query_unknown_kind"
    CONTROL_CHARACTERS = "query_control_characters"


@dataclass(frozen=True, slots=True)
class Query:
    """A checked query: what to search by, the text, and the date of birth if given."""

    kind: SearchKind
    text: str
    dob: date | None = None


def parse_query(kind: str, text: str, dob: str | None = None) -> Query | QueryProblem:
    """The query an officer typed, checked; or the problem with it (never an exception)."""
    try:
        chosen = SearchKind(kind)
    except ValueError:
        return QueryProblem.UNKNOWN_KIND
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) > MAX_QUERY_CHARS:
        return QueryProblem.TOO_LONG
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        return QueryProblem.CONTROL_CHARACTERS
    searchable = (
        name_form(text).tokens
        if chosen is SearchKind.NAME
        else _NOT_ALNUM.sub("", fold(text).upper())
    )
    if not searchable:
        return QueryProblem.EMPTY
    born: date | None = None
    if dob is not None and dob.strip():
        if chosen is not SearchKind.NAME:
            return QueryProblem.DOB_WITHOUT_NAME
        try:
            born = date.fromisoformat(dob.strip())
        except ValueError:
            return QueryProblem.BAD_DOB
    return Query(chosen, text, born)
