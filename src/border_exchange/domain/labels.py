"""Labels and messages of the border post in French and English.

Only the labels are translated: the alert content stays as its origin wrote it.
Codes (alert types, actions, warning markers, sections) have a label in each
language; an unknown code is shown as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

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
        "key_needed": "clé de chiffrement {key_id} : requise par {count} signalement(s) actif(s)",
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
        "score": "score",
        "why": "Pourquoi",
        "matched_name": "Nom enregistré",
        "order_swapped": "ordre des noms inversé",
        "match_EXACT": "identique",
        "match_SPELLING": "même nom, autre orthographe",
        "match_TYPO": "une lettre de différence",
        "match_VARIANT": "variante proche",
        "match_SCRIPT": "autre écriture (translittération)",
        "match_JOINED": "noms accolés ou séparés",
        "key_match": "{kind} identique : {value}",
        "name": "Nom",
        "plate": "Plaque d'immatriculation",
        "vin": "Numéro de châssis (VIN)",
        "document": "Numéro de document",
        "dob": "Date de naissance (AAAA-MM-JJ, facultative)",
        "dob_known": "date de naissance concordante ou inconnue",
        "query_empty": "Saisissez un nom, une plaque ou un numéro.",
        "query_too_long": "Recherche trop longue : 200 caractères au plus.",
        "query_bad_dob": "Date de naissance invalide : utilisez AAAA-MM-JJ, ex. 1986-04-17.",
        "query_dob_without_name": "La date de naissance ne sert qu'à une recherche par nom.",
        "query_unknown_kind": "Type de recherche inconnu.",
        "query_control_characters": "La recherche contient des caractères non imprimables.",
        "store_error": "La base locale du poste est illisible ou endommagée. La recherche a été "
        "consignée au journal. Prévenez l'administrateur du poste.",
        "app_title": "Poste frontière - consultation des signalements",
        "login": "Connexion",
        "officer": "Identifiant",
        "password": "Mot de passe",
        "sign_in": "Se connecter",
        "logout": "Se déconnecter",
        "login_refused": "Identifiant ou mot de passe faux, ou compte verrouillé ou désactivé.",
        "login_needed": "Connectez-vous pour consulter les signalements.",
        "search": "Rechercher",
        "search_by": "Rechercher par",
        "results": "Résultats",
        "open_alert": "Ouvrir la fiche",
        "status": "État de la synchronisation",
        "link": "Liaison",
        "link_up": "établie",
        "link_down": "coupée",
        "catch_up": "Rattrapage",
        "caught_up": "à jour",
        "last_record": "Dernier enregistrement reçu",
        "photo_withheld": "Photo non communiquée au titre de l'accord.",
        "photo_missing": "Photo annoncée mais absente ou illisible.",
        "photo_none": "Ce signalement ne comporte pas de photo.",
        "photo_alt": "Photo de la personne recherchée",
        "grading": "Fiabilité (source / information)",
        "validity": "Validité",
        "from_to": "du {start} au {end}",
        "not_found": "Signalement introuvable : expiré, annulé ou jamais reçu.",
        "csrf_refused": "Formulaire expiré ou invalide : rechargez la page et recommencez.",
        "language": "Langue",
        "page_not_found": "Page introuvable.",
        "server_error": "Erreur interne : la demande n'a pas abouti et a été consignée.",
        "back_to_search": "Retour à la recherche",
        "signed_in_as": "Connecté : {officer} ({role})",
        "role_officer": "agent",
        "role_admin": "administrateur du poste",
        "skip_to_content": "Aller au contenu",
        "main_menu": "Menu principal",
        "log_verified": "Journal intègre : {count} consultation(s), chaîne vérifiée.",
        "log_broken": "Journal altéré : {count} problème(s).",
        # the hit procedure on an alert's page
        "hits_of_alert": "Réponses positives (hits) signalées par ce poste",
        "hit_report_title": "Signaler une réponse positive à l'origine",
        "hit_action": "Suite donnée",
        "hit_ARRESTED": "Personne interpellée",
        "hit_SEIZED": "Saisie effectuée",
        "hit_LOCATED": "Localisé",
        "hit_OBSERVED": "Observé",
        "hit_NOT_ACTED": "Aucune action",
        "hit_reason": "Pourquoi aucune action (obligatoire avec « Aucune action »)",
        "hit_place": "Lieu (point de passage)",
        "hit_at": "Quand (ISO 8601 avec fuseau ; vide : maintenant)",
        "hit_contact": "Contact du poste pour le bureau d'origine",
        "hit_remarks": "Remarques",
        "hit_send": "Signer et mettre en file",
        "hit_refused": "Réponse positive non enregistrée, rien n'a été mis en file :",
        "hit_queued": "Réponse positive {hit_id} signée et mise en file : « post run » "
        "l'envoie à {origin}, une seule fois, dès que la liaison le permet.",
        "hit_in_queue": "en file (pas encore envoyée)",
        "hit_sent": "envoyée le {at}",
        "hit_acknowledged": "Accusé de réception de {origin} le {at} :",
        "hit_not_acknowledged": "Pas encore d'accusé de réception.",
        "hit_no_reports": "Aucune réponse positive signalée par ce poste sur ce signalement.",
        "desk_contact": "contact du bureau",
        "hits_not_set_up": "Cette page ne signe pas de réponses positives (« post serve » "
        "lancé sans --key) : utilisez « post report-hit ».",
        "hit_form_too_large": "Formulaire trop long : remarques et motif sont limités à "
        "{limit} caractères. Rien n'a été mis en file.",
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
        "key_needed": "encryption key {key_id}: needed by {count} alert(s) in force",
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
        "score": "score",
        "why": "Why it matched",
        "matched_name": "Name on record",
        "order_swapped": "name order swapped",
        "match_EXACT": "identical",
        "match_SPELLING": "same name, other spelling",
        "match_TYPO": "one letter apart",
        "match_VARIANT": "close variant",
        "match_SCRIPT": "other script (transliteration)",
        "match_JOINED": "names joined or split",
        "key_match": "same {kind}: {value}",
        "name": "Name",
        "plate": "Registration plate",
        "vin": "Vehicle identification number (VIN)",
        "document": "Document number",
        "dob": "Date of birth (YYYY-MM-DD, optional)",
        "dob_known": "date of birth agrees or is unknown",
        "query_empty": "Enter a name, a plate or a number.",
        "query_too_long": "Query too long: 200 characters at most.",
        "query_bad_dob": "Invalid date of birth: use YYYY-MM-DD, for example 1986-04-17.",
        "query_dob_without_name": "A date of birth narrows a name search only.",
        "query_unknown_kind": "Unknown kind of search.",
        "query_control_characters": "The query holds unprintable characters.",
        "store_error": "The post's local store is unreadable or damaged. The search was "
        "logged. Tell the post administrator.",
        "app_title": "Border post - alert check",
        "login": "Log in",
        "officer": "Officer name",
        "password": "Password",
        "sign_in": "Log in",
        "logout": "Log out",
        "login_refused": "Wrong name or password, or the account is locked or disabled.",
        "login_needed": "Log in to check alerts.",
        "search": "Search",
        "search_by": "Search by",
        "results": "Results",
        "open_alert": "Open the alert",
        "status": "Sync status",
        "link": "Link",
        "link_up": "up",
        "link_down": "down",
        "catch_up": "Catch-up",
        "caught_up": "up to date",
        "last_record": "Last record received",
        "photo_withheld": "Photo withheld under the agreement.",
        "photo_missing": "Photo announced but missing or unreadable.",
        "photo_none": "This alert has no photo.",
        "photo_alt": "Photo of the wanted person",
        "grading": "Grading (source / information)",
        "validity": "Validity",
        "from_to": "from {start} to {end}",
        "not_found": "Alert not found: expired, cancelled or never received.",
        "csrf_refused": "Form expired or invalid: reload the page and try again.",
        "language": "Language",
        "page_not_found": "Page not found.",
        "server_error": "Internal error: the request failed and was logged.",
        "back_to_search": "Back to search",
        "signed_in_as": "Logged in: {officer} ({role})",
        "role_officer": "officer",
        "role_admin": "post administrator",
        "skip_to_content": "Skip to content",
        "main_menu": "Main menu",
        "log_verified": "Log intact: {count} consultation(s), chain verified.",
        "log_broken": "Log altered: {count} problem(s).",
        # the hit procedure on an alert's page
        "hits_of_alert": "Hits reported by this post",
        "hit_report_title": "Report a hit to the origin",
        "hit_action": "What was done",
        "hit_ARRESTED": "Arrested",
        "hit_SEIZED": "Seized",
        "hit_LOCATED": "Located",
        "hit_OBSERVED": "Observed",
        "hit_NOT_ACTED": "Not acted on",
        "hit_reason": "Why nothing was done (required with 'Not acted on')",
        "hit_place": "Place (crossing point)",
        "hit_at": "When (ISO 8601 with a zone; empty: now)",
        "hit_contact": "The post's contact for the origin's desk",
        "hit_remarks": "Remarks",
        "hit_send": "Sign and queue",
        "hit_refused": "Hit report not recorded, nothing was queued:",
        "hit_queued": "Hit {hit_id} signed and queued: 'post run' sends it to {origin}, "
        "once, as soon as the link allows.",
        "hit_in_queue": "queued (not sent yet)",
        "hit_sent": "sent {at}",
        "hit_acknowledged": "Acknowledged by {origin} on {at}:",
        "hit_not_acknowledged": "Not acknowledged yet.",
        "hit_no_reports": "No hit reported by this post on this alert.",
        "desk_contact": "desk contact",
        "hits_not_set_up": "This page does not sign hit reports ('post serve' started "
        "without --key): use 'post report-hit'.",
        "hit_form_too_large": "Form too long: remarks and reason are limited to {limit} "
        "characters. Nothing was queued.",
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


def language_from_header(accept_language: str | None) -> Lang:
    """The first of French or English an ``Accept-Language`` header prefers (English if none)."""
    best: tuple[float, int, Lang] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            lang: Lang = "fr" if primary == "fr" else "en"
            if best is None or (quality, -position) > (best[0], best[1]):
                best = (quality, -position, lang)
    return "en" if best is None else best[2]


def when(value: datetime | None, lang: Lang) -> str:
    """A time as the post shows it (UTC, to the second), or "never"."""
    if value is None:
        return label(lang, "never")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def content_text(value: Any) -> str:
    """A section field as text, records and lists flattened, as the origin wrote it."""
    if isinstance(value, Mapping):
        return ", ".join(
            f"{k}: {content_text(v)}" for k, v in value.items() if v not in (None, [], "")
        )
    if isinstance(value, list):
        return "; ".join(content_text(v) for v in value)
    return str(value)
