"""Lookups: plates, VINs and documents ignore case and separators; names ignore accents."""

from __future__ import annotations

from datetime import date

import pytest

from border_exchange.domain.catalog import AlertType
from border_exchange.domain.labels import label, language_from_environment
from border_exchange.domain.lookup import (
    PersonName,
    name_matches,
    normalise_document,
    normalise_plate,
    search_keys,
)
from border_exchange.domain.names import name_form


@pytest.mark.parametrize("written", ["BG 4512 A", "bg-4512-a", "Bg4512a", " BG.4512 A "])
def test_plates_ignore_case_spaces_dashes_and_dots(written: str) -> None:
    assert normalise_plate(written) == "BG4512A"


def test_document_numbers_ignore_separators() -> None:
    assert normalise_document("ca-0457821") == normalise_document("CA 0457821") == "CA0457821"


def test_names_are_compared_without_accents_case_hyphens_or_apostrophes() -> None:
    assert name_form("Désiré NGAKOLA").text == "desire ngakola"
    assert name_form("Jean-Baptiste").text == "jean baptiste"
    assert name_form("Ẓoumaldé").text == "zoumalde"
    assert name_form("M'Bala").text == "mbala"


def test_a_name_matches_when_every_query_token_is_in_one_name() -> None:
    names = [
        PersonName(0, "NGAKOLA Jean-Baptiste Désiré", date(1986, 4, 17)),
        PersonName(0, "Le Colonel", date(1986, 4, 17)),
    ]
    assert name_matches("jean baptiste ngakola", names)
    assert name_matches("NGAKOLA Desire", names)
    assert name_matches("le colonel", names)
    assert not name_matches("colonel ngakola", names)  # tokens spread over two names
    assert not name_matches("Ngakola Pierre", names)
    assert not name_matches("", names)


def test_date_of_birth_narrows_but_an_unknown_date_still_matches() -> None:
    known = [PersonName(0, "LADU Peter", date(1979, 11, 2))]
    unknown = [PersonName(0, "LADU Peter", None)]
    assert name_matches("ladu", known, date(1979, 11, 2))
    assert not name_matches("ladu", known, date(1980, 1, 1))
    assert name_matches("ladu", unknown, date(1980, 1, 1))


def test_wanted_person_keys_cover_aliases_transliterations_and_original_script() -> None:
    identity = {
        "family_names": ["LADU"],
        "given_names": ["Peter", "Wani"],
        "names_at_birth": ["LOKU"],
        "aliases": ["Major Wani"],
        "original_script_names": [
            {"script": "Arab", "value": "بيتر واني لادو", "transliteration": "PETER WANI LADU"}
        ],
        "date_of_birth": date(1979, 11, 2),
    }
    keys = search_keys(
        AlertType.WANTED_PERSON,
        {"identity": identity, "documents": {"documents": [{"number": "R 009-345"}]}},
    )
    assert keys.documents == {"R009345"}
    for query in ("Peter Ladu", "loku peter", "major wani", "بيتر لادو", "peter wani ladu"):
        assert name_matches(query, keys.names), query


def test_incidents_flag_suspects_and_plates_but_not_victims() -> None:
    involved = {
        "persons": [
            {"role": "VICTIM", "name": "ZOUMALDE Hamadou"},
            {"role": "SUSPECT", "name": "Abakar Mahamat"},
        ],
        "vehicles": [{"plate": "ab-123-cd"}, {"description": "no plates"}],
    }
    keys = search_keys(AlertType.BORDER_INCIDENT, {"involved": involved})
    assert keys.plates == {"AB123CD"}
    assert name_matches("mahamat", keys.names)
    assert not name_matches("zoumalde", keys.names)


def test_labels_follow_the_locale_and_leave_unknown_codes_as_they_are() -> None:
    assert language_from_environment({"LANG": "fr_CD.UTF-8"}) == "fr"
    assert language_from_environment({"LC_ALL": "en_US.UTF-8", "LANG": "fr_FR"}) == "en"
    assert language_from_environment({}) == "en"
    assert label("fr", "ARREST") == "Arrêter"
    assert label("en", "hits", count=2) == "2 alert(s) found"
    assert label("fr", "SOMETHING_NEW") == "SOMETHING_NEW"
