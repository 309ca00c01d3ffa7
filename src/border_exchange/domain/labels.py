"""Labels and messages of the border post in French and English.

Only the labels are translated: the alert content stays as its origin wrote it.
Codes (alert types, actions, warning markers, sections) have a label in each
language; an unknown code is shown as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

Lang = Literal["fr", "en"]
LANGUAGES: Final[tuple[Lang, ...]] = ("fr", "en")

_LABELS: Final[Mapping[Lang, Mapping[str, str]]] = {
    "fr": {
        "hit": "SIGNALEMENT TROUVÉ",
        "hits": "{count} signalement(s) trouvé(s)",
        "no_hit": "Aucun signalement",
        "alert_type": "Type",
        "origin": "Origine",
        "alert": "Signalement",
        "version": "version",
        "action_on_hit": "Conduite à tenir",
        "warnings": "Avertissements",
        "none": "aucun",
        "handling": "Code de traitement",
        "priority": "Priorité",
        "issued_at": "Émis le",
        "expires_at": "Expire le",
        "sections_received": "Rubriques reçues",
        "sections_withheld": "Rubriques non communiquées",
        "active_alerts": "{count} signalement(s) actif(s)",
        "last_sync": "Dernière synchronisation",
        "never": "jamais",
        "lag": "Retard",
        "feed": "Flux",
        "next_offset": "Prochain offset",
        "end_offset": "Fin du flux",
        "rejected": "Messages refusés",
        "query": "Recherche",
        "WANTED_PERSON": "Personne recherchée",
        "VEHICLE_NOTICE": "Véhicule signalé",
        "BORDER_INCIDENT": "Incident frontalier",
        "ARREST": "Arrêter",
        "LOCATE": "Localiser",
        "DISCREET_CHECK": "Contrôle discret",
        "SPECIFIC_CHECK": "Contrôle spécifique",
        "SEIZE": "Saisir",
        "REPORT_ONLY": "Signaler uniquement",
        "ARMED": "ARMÉ",
        "VIOLENT": "VIOLENT",
        "ESCAPE_RISK": "RISQUE D'ÉVASION",
        "SUICIDE_RISK": "RISQUE SUICIDAIRE",
        "EXPLOSIVES": "EXPLOSIFS",
        "PUBLIC_HEALTH_RISK": "RISQUE SANITAIRE",
        "ARMED_GROUP_MEMBER": "MEMBRE D'UN GROUPE ARMÉ",
        "IDENTITY_MISUSED": "IDENTITÉ USURPÉE",
        "ROUTINE": "Normale",
        "PRIORITY": "Prioritaire",
        "URGENT": "Urgente",
        "identity": "identité",
        "documents": "documents d'identité",
        "description": "signalement physique",
        "photo": "photo",
        "offence": "infraction",
        "remarks": "remarques",
        "contact": "service demandeur",
        "vehicle": "véhicule",
        "event": "événement",
        "owner": "propriétaire",
        "incident": "incident",
        "location": "lieu",
        "involved": "personnes et véhicules impliqués",
    },
    "en": {
        "hit": "HIT",
        "hits": "{count} alert(s) found",
        "no_hit": "No hit",
        "alert_type": "Type",
        "origin": "Origin",
        "alert": "Alert",
        "version": "version",
        "action_on_hit": "Action on hit",
        "warnings": "Warnings",
        "none": "none",
        "handling": "Handling code",
        "priority": "Priority",
        "issued_at": "Issued",
        "expires_at": "Expires",
        "sections_received": "Sections received",
        "sections_withheld": "Sections withheld",
        "active_alerts": "{count} active alert(s)",
        "last_sync": "Last sync",
        "never": "never",
        "lag": "Lag",
        "feed": "Feed",
        "next_offset": "Next offset",
        "end_offset": "End of feed",
        "rejected": "Refused messages",
        "query": "Query",
        "WANTED_PERSON": "Wanted person",
        "VEHICLE_NOTICE": "Vehicle notice",
        "BORDER_INCIDENT": "Border incident",
        "ARREST": "Arrest",
        "LOCATE": "Locate",
        "DISCREET_CHECK": "Discreet check",
        "SPECIFIC_CHECK": "Specific check",
        "SEIZE": "Seize",
        "REPORT_ONLY": "Report only",
        "ARMED": "ARMED",
        "VIOLENT": "VIOLENT",
        "ESCAPE_RISK": "ESCAPE RISK",
        "SUICIDE_RISK": "SUICIDE RISK",
        "EXPLOSIVES": "EXPLOSIVES",
        "PUBLIC_HEALTH_RISK": "PUBLIC HEALTH RISK",
        "ARMED_GROUP_MEMBER": "ARMED GROUP MEMBER",
        "IDENTITY_MISUSED": "IDENTITY MISUSED",
        "ROUTINE": "Routine",
        "PRIORITY": "Priority",
        "URGENT": "Urgent",
        "identity": "identity",
        "documents": "identity documents",
        "description": "physical description",
        "photo": "photo",
        "offence": "offence",
        "remarks": "remarks",
        "contact": "requesting unit",
        "vehicle": "vehicle",
        "event": "event",
        "owner": "owner",
        "incident": "incident",
        "location": "location",
        "involved": "persons and vehicles involved",
    },
}


def label(lang: Lang, key: str, **values: object) -> str:
    """The label of ``key`` in ``lang`` with ``values`` filled in; an unknown key as it is."""
    text = _LABELS[lang].get(key, key)
    return text.format(**values) if values else text


def language_from_environment(env: Mapping[str, str]) -> Lang:
    """French when ``LC_ALL``, ``LC_MESSAGES`` or ``LANG`` (first set) starts with ``fr``."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"
