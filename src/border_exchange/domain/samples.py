"""Realistic sample alerts of every type, in French or English, for demos and tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.catalog import AlertType

Language = Literal["fr", "en"]

SAMPLE_LIFETIME = timedelta(days=365)
"""A sample alert expires this long after the time it is made for."""

# A 1x1 grey JPEG: small, valid, and obviously not a real photo.
SAMPLE_PHOTO_BASE64 = (
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////"
    "////////////////////////////////wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAAA//EABQQAQAA"
    "AAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AN//Z"
)

_TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "offence": "Meurtre d'un commerçant au marché PK5 de Bangui, puis fuite vers le sud.",
        "place_of_birth": "Berbérati",
        "marks": "cicatrice de 4 cm au-dessus de l'œil gauche",
        "remarks": "Se déplacerait entre Mongoumba et Zongo par pirogue. Contacts connus à Bétou.",
        "unit": "Office central de répression du banditisme (OCRB), Bangui",
        "authority": "Tribunal de grande instance de Bangui",
        "vehicle_event": "Volé devant le commissariat du 3e arrondissement pendant la nuit.",
        "incident": "Une quinzaine d'hommes armés ont franchi la rivière et incendié deux cases.",
        "place": "Gbiti, route de Bertoua",
        "crossing": "Poste frontière de Garoua-Boulaï",
        "build": "mince",
        "hair": "cheveux ras, noirs",
        "eyes": "marron",
        "involved_desc": "pick-up blanc sans plaques",
    },
    "en": {
        "offence": "Armed robbery of a fuel convoy on the Juba-Nimule road, one driver killed.",
        "place_of_birth": "Torit",
        "marks": "tribal marks on both cheeks; missing upper incisor",
        "remarks": "Believed to move between Nimule and Elegu; uses a boda-boda to cross.",
        "unit": "Criminal Investigation Department, Juba",
        "authority": "High Court of Juba",
        "vehicle_event": "Hijacked at gunpoint near Kaya; driver left unharmed.",
        "incident": "Cattle raiders crossed at night and drove off about two hundred head.",
        "place": "Kajo Keji county, near Kansuk",
        "crossing": "Nimule-Elegu one-stop border post",
        "build": "tall, slim",
        "hair": "short black",
        "eyes": "brown",
        "involved_desc": "white Toyota Land Cruiser, no plates",
    },
}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(moment: datetime, days_before: int) -> str:
    return (moment.date() - timedelta(days=days_before)).isoformat()


def _header(
    alert_type: AlertType, origin: str, alert_id: str | None, language: Language, at: datetime
) -> dict[str, Any]:
    return {
        "alert_type": alert_type.value,
        "origin": origin,
        "alert_id": alert_id,
        "expires_at": _stamp((at + SAMPLE_LIFETIME).replace(hour=0, minute=0, second=0)),
        "handling_code": "H1",
        "source_reliability": "B",
        "information_reliability": "2",
        "priority": "URGENT" if alert_type is AlertType.WANTED_PERSON else "PRIORITY",
        "language": language,
    }


def _wanted_person(text: dict[str, str], language: Language, at: datetime) -> dict[str, Any]:
    french = language == "fr"
    year = at.year
    identity: dict[str, Any] = {
        "family_names": ["NGAKOLA"] if french else ["LADU"],
        "given_names": ["Jean-Baptiste", "Désiré"] if french else ["Peter", "Wani"],
        "aliases": ["Le Colonel"] if french else ["Major Wani"],
        "sex": "MALE",
        "date_of_birth": "1986-04-17" if french else "1979-11-02",
        "place_of_birth": text["place_of_birth"],
        "country_of_birth": "CAF" if french else "SSD",
        "nationalities": ["CAF"] if french else ["SSD", "UGA"],
    }
    if not french:
        identity["original_script_names"] = [
            {"script": "Arab", "value": "بيتر واني لادو", "transliteration": "PETER WANI LADU"}
        ]
    return {
        "action_on_hit": "ARREST",
        "warning_markers": ["ARMED", "VIOLENT"],
        "sections": {
            "identity": identity,
            "documents": {
                "documents": [
                    {
                        "kind": "NATIONAL_ID_CARD" if french else "PASSPORT",
                        "number": "CA-0457821" if french else "R00934512",
                        "issuing_country": "CAF" if french else "SSD",
                        "issued_on": _ten_years_before(at.date()).isoformat(),
                        "expires_on": _day(at, 295),
                    }
                ]
            },
            "description": {
                "height_cm": 178,
                "build": text["build"],
                "eye_colour": text["eyes"],
                "hair": text["hair"],
                "distinguishing_marks": [text["marks"]],
            },
            "photo": {"media_type": "image/jpeg", "data": SAMPLE_PHOTO_BASE64},
            "offence": {
                "category": "HOMICIDE" if french else "ARMED_ROBBERY",
                "description": text["offence"],
                "warrant_reference": f"MA-{year}/0142" if french else f"HCJ/CR/{year}/077",
                "warrant_date": _day(at, 40),
                "issuing_authority": text["authority"],
            },
            "remarks": {"text": text["remarks"]},
            "contact": {
                "unit_name": text["unit"],
                "phone": "+236 21 61 00 00" if french else "+211 920 000 000",
                "email": "ocrb@police.example.cf" if french else "cid@police.example.ss",
            },
        },
    }


def _vehicle_notice(text: dict[str, str], language: Language, at: datetime) -> dict[str, Any]:
    french = language == "fr"
    return {
        "action_on_hit": "SEIZE",
        "warning_markers": [],
        "sections": {
            "vehicle": {
                "plate": "BG 4512 A" if french else "SSD 123 AB",
                "registration_country": "CAF" if french else "SSD",
                "vin": "JTEBU29J405012345",
                "make": "Toyota",
                "model": "Hilux" if french else "Land Cruiser",
                "colour": "blanc" if french else "white",
                "year": 2018,
                "vehicle_type": "PICKUP" if french else "SUV",
            },
            "event": {
                "reason": "STOLEN",
                "event_date": _day(at, 26),
                "place": "Bangui" if french else "Kaya",
                "description": text["vehicle_event"],
            },
            "owner": {
                "holders": [
                    {
                        "role": "OWNER",
                        "name": "Société de transport Oubangui SARL"
                        if french
                        else "Equatoria Logistics Ltd",
                        "address": "Avenue Boganda, Bangui" if french else "Hai Malakal, Juba",
                    }
                ]
            },
            "remarks": {"text": text["remarks"]},
            "contact": {"unit_name": text["unit"]},
        },
    }


def _border_incident(text: dict[str, str], language: Language, at: datetime) -> dict[str, Any]:
    french = language == "fr"
    return {
        "action_on_hit": "REPORT_ONLY",
        "warning_markers": ["ARMED_GROUP_MEMBER"],
        "sections": {
            "incident": {
                "incident_type": "ARMED_INCURSION" if french else "CATTLE_RAIDING",
                "occurred_at": _stamp(
                    (at - timedelta(days=2)).replace(hour=2, minute=30, second=0)
                ),
                "severity": "HIGH",
                "description": text["incident"],
            },
            "location": {
                "latitude": 5.7308 if french else 3.6036,
                "longitude": 14.4305 if french else 31.1544,
                "crossing_point": text["crossing"],
                "place_name": text["place"],
                "country": "CAF" if french else "SSD",
            },
            "involved": {
                "persons": [{"role": "VICTIM", "name": "ZOUMALDE Hamadou", "sex": "MALE"}],
                "vehicles": [{"description": text["involved_desc"]}],
            },
            "remarks": {"text": text["remarks"]},
            "contact": {"unit_name": text["unit"]},
        },
    }


_BUILDERS = {
    AlertType.WANTED_PERSON: _wanted_person,
    AlertType.VEHICLE_NOTICE: _vehicle_notice,
    AlertType.BORDER_INCIDENT: _border_incident,
}


def _ten_years_before(day: date) -> date:
    # 29 February has no twin ten years earlier unless that year is a leap year too.
    return day.replace(year=day.year - 10, day=28 if (day.month, day.day) == (2, 29) else day.day)


def sample_alert_data(
    alert_type: AlertType,
    *,
    origin: str = "CAF",
    alert_id: str | None = None,
    language: Language = "fr",
    at: datetime | None = None,
) -> dict[str, Any]:
    """A sample alert as the mapping a gateway user would write (JSON or YAML).

    Its dates are relative to ``at`` (default: now): the events lie days before it,
    and it expires :data:`SAMPLE_LIFETIME` after it.
    """
    moment = at if at is not None else datetime.now(UTC)
    text = _TEXT[language]
    return _header(alert_type, origin, alert_id, language, moment) | _BUILDERS[alert_type](
        text, language, moment
    )


def sample_alert(
    alert_type: AlertType,
    *,
    origin: str = "CAF",
    alert_id: str | None = None,
    language: Language = "fr",
    at: datetime | None = None,
) -> AlertInput:
    """A validated sample CREATE alert of ``alert_type`` from ``origin``, dated around ``at``."""
    return parse_alert(
        sample_alert_data(alert_type, origin=origin, alert_id=alert_id, language=language, at=at)
    )
