"""What a border post searches by: normalised plates, VINs, document numbers and names.

Plates, VINs and document numbers match regardless of case, spaces, dashes and dots.
Names match regardless of accents and case: a query matches a person when every
token of the query is a token of one of the person's names (the civil name, a name
at birth, an alias, a name in original script or its transliteration). The functions
here are pure; the store keeps their output in its search tables.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from border_exchange.domain.catalog import AlertType

_NOT_ALNUM: Final = re.compile(r"[^0-9A-Z]")
_TOKEN: Final = re.compile(r"\w+")
_SUSPECT: Final = "SUSPECT"


def fold(text: str) -> str:
    """``text`` without accents or other combining marks, case-folded."""
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


def name_tokens(text: str) -> frozenset[str]:
    """The tokens of a name, accents stripped and case-folded (``_`` counts as a separator)."""
    return frozenset(t for t in _TOKEN.findall(fold(text).replace("_", " ")) if t)


@dataclass(frozen=True, slots=True)
class PersonName:
    """One name under which a person is flagged, as its set of tokens."""

    person: int
    tokens: frozenset[str]
    date_of_birth: date | None


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


def _names_of_identity(identity: Mapping[str, Any]) -> list[frozenset[str]]:
    given = list(identity.get("given_names") or [])
    names: list[frozenset[str]] = []
    family = identity.get("family_names") or []
    if family or given:
        names.append(frozenset().union(*(name_tokens(n) for n in [*family, *given])))
    for birth_name in identity.get("names_at_birth") or []:
        names.append(frozenset().union(*(name_tokens(n) for n in [birth_name, *given])))
    for alias in identity.get("aliases") or []:
        names.append(name_tokens(alias))
    for original in identity.get("original_script_names") or []:
        names.append(name_tokens(original.get("value") or ""))
        names.append(name_tokens(original.get("transliteration") or ""))
    return [name for name in names if name]


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
            names.extend(PersonName(0, t, born) for t in _names_of_identity(identity))
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
                tokens = name_tokens(person.get("name") or "")
                if tokens:
                    names.append(PersonName(index, tokens, _date(person.get("date_of_birth"))))
    return SearchKeys(
        frozenset(p for p in plates if p),
        frozenset(v for v in vins if v),
        frozenset(d for d in documents if d),
        tuple(names),
    )


def name_matches(query: str, names: Iterable[PersonName], dob: date | None = None) -> bool:
    """Whether ``query`` matches one of ``names`` (and ``dob``, where the name has one)."""
    wanted = name_tokens(query)
    if not wanted:
        return False
    return any(
        wanted <= name.tokens
        and (dob is None or name.date_of_birth is None or name.date_of_birth == dob)
        for name in names
    )
