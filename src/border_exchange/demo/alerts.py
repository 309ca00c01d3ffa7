"""The alerts of the demo's story: French from CAF and COD, English from SSD and the UN."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.samples import sample_alert_data


@dataclass(frozen=True)
class DemoAlert:
    """One alert of the story: who publishes it, the alert, and a one-line description."""

    alert: AlertInput
    summary: str

    @property
    def origin(self) -> str:
        """The publishing participant."""
        return self.alert.origin

    @property
    def alert_id(self) -> str:
        """The alert id (set by the demo)."""
        return self.alert.alert_id or ""


def _cod_wanted_person(data: dict[str, Any]) -> None:
    today = datetime.now(UTC).date()
    sections = data["sections"]
    sections["identity"].update(
        family_names=["MUKENDI"],
        given_names=["Patrick", "Kabeya"],
        aliases=["Pata"],
        date_of_birth="1991-08-12",
        place_of_birth="Gemena",
        country_of_birth="COD",
        nationalities=["COD"],
    )
    sections["documents"]["documents"] = [
        {
            "kind": "PASSPORT",
            "number": "OB0412957",
            "issuing_country": "COD",
            "issued_on": (today - timedelta(days=5 * 365 + 30)).isoformat(),
            "expires_on": (today + timedelta(days=5 * 365 - 30)).isoformat(),
        }
    ]
    sections["description"]["distinguishing_marks"] = ["tatouage d'un lion sur l'avant-bras droit"]
    sections["offence"].update(
        category="ARMED_ROBBERY",
        description="Attaque à main armée d'une agence de transfert d'argent à Gbadolite, "
        "deux blessés.",
        warrant_reference=f"RMP {today.year}/0311",
        issuing_authority="Parquet de grande instance de Gbadolite",
    )
    sections["remarks"]["text"] = (
        "Aurait traversé l'Oubangui en pirogue vers Mobaye ; utiliserait un faux passeport."
    )
    sections["contact"] = {
        "unit_name": "Commissariat provincial du Nord-Ubangi, Gbadolite",
        "phone": "+243 81 000 0000",
        "email": "cp.nordubangi@police.example.cd",
    }


def _cod_vehicle(data: dict[str, Any]) -> None:
    sections = data["sections"]
    sections["vehicle"].update(
        plate="4127 AB 19",
        registration_country="COD",
        vin="MHFYZ59G803004127",
        model="Land Cruiser",
        vehicle_type="SUV",
    )
    sections["event"].update(
        reason="USED_IN_CRIME",
        place="Zongo",
        description="Utilisé lors de l'attaque de Gbadolite ; vu au bac de Zongo.",
    )
    sections["owner"]["holders"] = [
        {"role": "OWNER", "name": "KASONGO Albert", "address": "Avenue du Port, Zongo"}
    ]
    sections["contact"] = {"unit_name": "Commissariat provincial du Nord-Ubangi, Gbadolite"}


def _border_incident(
    data: dict[str, Any],
    what: tuple[str, str, str],
    place: tuple[float, float, str, str, str],
    unit: str,
    remarks: str | None = None,
) -> None:
    """The sample border incident made into one of the story's: ``what`` (type, severity,
    description) happened at ``place`` (latitude, longitude, crossing point, place name,
    country); ``unit`` is the contact; ``remarks`` replace the sample's when given."""
    sections = data["sections"]
    incident_type, severity, description = what
    sections["incident"].update(
        incident_type=incident_type, severity=severity, description=description
    )
    latitude, longitude, crossing_point, place_name, country = place
    sections["location"].update(
        latitude=latitude,
        longitude=longitude,
        crossing_point=crossing_point,
        place_name=place_name,
        country=country,
    )
    if remarks is not None:
        sections["remarks"]["text"] = remarks
    sections["contact"] = {"unit_name": unit}


def _cod_incident(data: dict[str, Any]) -> None:
    _border_incident(
        data,
        ("SMUGGLING", "MEDIUM", "Saisie de 40 fûts de carburant débarqués de nuit en aval du bac."),
        (4.3417, 18.5939, "Beach de Zongo", "Zongo, Sud-Ubangi", "COD"),
        "Police des frontières, Zongo",
    )


def _monusco_incident(data: dict[str, Any]) -> None:
    _border_incident(
        data,
        (
            "ARMED_INCURSION",
            "HIGH",
            "About thirty armed men crossed from the Semliki valley at dawn and "
            "looted the market before withdrawing.",
        ),
        (0.1330, 29.7050, "Kasindi-Mpondwe border post", "Kasindi, Beni territory", "COD"),
        "UNPOL MONUSCO, Beni sector",
        remarks="Patrol from the Beni company deployed; situation calm by noon.",
    )


def story_alerts() -> tuple[DemoAlert, ...]:
    """The alerts the four gateways publish: French from CAF and COD, English from SSD and UN."""
    plan: list[tuple[AlertType, str, str, Any, str]] = [
        (AlertType.WANTED_PERSON, "CAF", "fr", None, "NGAKOLA Jean-Baptiste, homicide at PK5"),
        (AlertType.VEHICLE_NOTICE, "CAF", "fr", None, "stolen Toyota Hilux BG 4512 A"),
        (
            AlertType.WANTED_PERSON,
            "COD",
            "fr",
            _cod_wanted_person,
            "MUKENDI Patrick, armed robbery in Gbadolite, with photo",
        ),
        (AlertType.VEHICLE_NOTICE, "COD", "fr", _cod_vehicle, "Land Cruiser 4127 AB 19"),
        (AlertType.BORDER_INCIDENT, "COD", "fr", _cod_incident, "fuel smuggling at Zongo"),
        (AlertType.VEHICLE_NOTICE, "SSD", "en", None, "hijacked Land Cruiser SSD 123 AB"),
        (AlertType.BORDER_INCIDENT, "SSD", "en", None, "cattle raid near Kajo Keji"),
        (
            AlertType.BORDER_INCIDENT,
            "UN-MONUSCO",
            "en",
            _monusco_incident,
            "armed incursion at Kasindi",
        ),
    ]
    alerts = []
    for alert_type, origin, language, adapt, summary in plan:
        data = sample_alert_data(
            alert_type,
            origin=origin,
            alert_id=uuid.uuid4().hex,
            language="fr" if language == "fr" else "en",
        )
        if adapt is not None:
            adapt(data)
        alerts.append(DemoAlert(parse_alert(data), f"{summary} ({language})"))
    return tuple(alerts)
