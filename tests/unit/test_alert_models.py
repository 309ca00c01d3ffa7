"""Alert input validation: every problem names its field path and the rule it broke."""

from __future__ import annotations

from typing import Any

import pytest

from border_exchange.domain.alerts import (
    BorderIncidentAlert,
    VehicleNoticeAlert,
    WantedPersonAlert,
    parse_alert,
)
from border_exchange.domain.catalog import SECTIONS, AlertType, InformationReliability
from border_exchange.domain.samples import sample_alert, sample_alert_data
from border_exchange.errors import ValidationError


def problems(data: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(ValidationError) as caught:
        parse_alert(data)
    return caught.value.problems


def wanted(**changes: Any) -> dict[str, Any]:
    return sample_alert_data(AlertType.WANTED_PERSON) | changes


@pytest.mark.parametrize(
    ("alert_type", "model"),
    [
        (AlertType.WANTED_PERSON, WantedPersonAlert),
        (AlertType.VEHICLE_NOTICE, VehicleNoticeAlert),
        (AlertType.BORDER_INCIDENT, BorderIncidentAlert),
    ],
)
@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_sample_is_a_valid_alert_with_all_sections(
    alert_type: AlertType, model: type[object], language: str
) -> None:
    alert = sample_alert(alert_type, origin="SSD", language=language)  # type: ignore[arg-type]
    assert isinstance(alert, model)
    assert alert.present_section_names() == SECTIONS[alert_type]


def test_grades_and_enums_are_read_from_their_codes() -> None:
    alert = parse_alert(wanted())
    assert alert.information_reliability is InformationReliability.KNOWN_TO_SOURCE


def test_a_bad_date_names_its_path() -> None:
    data = wanted()
    data["sections"]["identity"]["date_of_birth"] = "1986-02-30"
    (problem,) = problems(data)
    assert problem.startswith("sections.identity.date_of_birth: Input should be a valid date")


def test_a_bad_enum_names_its_path_and_the_allowed_values() -> None:
    (problem,) = problems(wanted(action_on_hit="SHOOT"))
    assert problem.startswith("action_on_hit: Input should be 'ARREST'")


def test_all_problems_are_reported_at_once() -> None:
    data = wanted(origin="Centrafrique", handling_code="H9")
    data["sections"]["documents"]["documents"][0]["issuing_country"] = "cf"
    found = problems(data)
    assert [p.split(":")[0] for p in found] == [
        "origin",
        "handling_code",
        "sections.documents.documents.0.issuing_country",
    ]


def test_an_unknown_field_is_refused() -> None:
    data = wanted()
    data["sections"]["identity"]["blood_group"] = "O+"
    assert problems(data) == ("sections.identity.blood_group: Extra inputs are not permitted",)


def test_an_unknown_alert_type_is_named() -> None:
    (problem,) = problems(wanted(alert_type="STOLEN_ART"))
    assert problem.startswith("alert_type: ")


def test_a_create_needs_its_core_sections() -> None:
    data = wanted()
    del data["sections"]["offence"]
    assert problems(data) == ("(alert): CREATE needs sections: offence",)


def test_a_cancel_needs_an_alert_id_a_reason_and_no_sections() -> None:
    data = wanted(operation="CANCEL", version=2)
    found = problems(data)
    assert found == ("(alert): CANCEL needs the alert_id of the alert it changes",)
    data |= {"alert_id": "a-1", "cancel_reason": "Personne arrêtée le 2 mars."}
    assert problems(data) == ("(alert): a CANCEL carries no sections",)
    del data["sections"]
    assert parse_alert(data).cancel_reason == "Personne arrêtée le 2 mars."


def test_an_update_has_a_version_above_one() -> None:
    assert problems(wanted(operation="UPDATE", alert_id="a-1")) == (
        "(alert): UPDATE has version 2 or more",
    )


def test_names_in_original_script_carry_an_icao_transliteration() -> None:
    data = wanted()
    data["sections"]["identity"]["original_script_names"] = [
        {"script": "Arab", "value": "محمد", "transliteration": "mohamed"}
    ]
    (problem,) = problems(data)
    assert problem.startswith(
        "sections.identity.original_script_names.0.transliteration: String should match pattern"
    )


def test_photo_data_is_base64_in_documents() -> None:
    data = wanted()
    data["sections"]["photo"]["data"] = "not base64 at all!"
    assert problems(data) == ("sections.photo.data: photo data must be base64",)


def test_a_review_date_alone_means_midnight_utc() -> None:
    # About the format of a fixed date: parsing reads no clock.
    alert = parse_alert(wanted(expires_at="2027-01-01"))
    assert alert.expires_at.isoformat() == "2027-01-01T00:00:00+00:00"


def test_a_naive_expiry_time_is_refused() -> None:
    (problem,) = problems(wanted(expires_at="2027-01-01T10:00:00"))
    assert problem.startswith("expires_at: Input should have timezone info")
