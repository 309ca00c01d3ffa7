"""The agreement set: bilateral agreements as a validated, content-addressed document.

``parse_agreement_set`` checks the structure of the YAML document and returns a
frozen ``AgreementSet`` whose ``digest`` is the SHA-256 of a canonical
serialisation (agreements sorted by id, parties and flows sorted, sections in
their catalog order), so neither the order of the file nor its layout changes
the digest. ``check_agreement_set`` finds what the structure cannot: unknown
participants, unknown types or sections, contradictory dates, overlaps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from itertools import combinations
from typing import Any, Final, Literal

import pydantic
import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from border_exchange.domain.catalog import SECTIONS, AlertType, HandlingCode
from border_exchange.domain.times import iso
from border_exchange.errors import PolicyError

_SAFE_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ALL_SECTIONS: Final = "all"
"""The shorthand for every section the catalog defines for a type; expanded when parsed."""


class AgreementStatus(StrEnum):
    """Whether an agreement lets anything flow."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class TypeTerms(BaseModel):
    """What of one alert type flows in one direction: which sections, up to which handling code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sections: tuple[str, ...] | Literal["all"] = Field(min_length=1)
    max_handling: HandlingCode

    @field_validator("sections")
    @classmethod
    def _no_duplicates(cls, value: tuple[str, ...] | str) -> tuple[str, ...] | str:
        if isinstance(value, tuple) and len(set(value)) != len(value):
            raise ValueError("sections must not repeat")
        return value


class Flow(BaseModel):
    """One direction of an agreement: the alert types that flow from ``source`` to ``to``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    source: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    types: dict[str, TypeTerms] = Field(min_length=1)


class StatementAction(StrEnum):
    """What a party's signed statement does to an agreement both parties signed."""

    SUSPEND = "suspend"
    TERMINATE = "terminate"
    RESUME = "resume"


class _Signed(BaseModel):
    """Who signed, with which key, when, over which agreement digest; the Ed25519 signature.

    The signature is kept as text here: ``domain.consent`` decodes and verifies it,
    naming the agreement, the party and the reason of every defect.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    party: str = Field(min_length=1)
    key_id: str = Field(min_length=1)
    signed_at: AwareDatetime
    digest: str = Field(min_length=1)
    signature: str = Field(min_length=1)

    @field_validator("signed_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class AgreementSignature(_Signed):
    """A party's signature of an agreement's content (see ``domain.consent``)."""


class StatusStatement(_Signed):
    """A party's signed statement that suspends, terminates or resumes an agreement."""

    action: StatementAction


class Agreement(BaseModel):
    """A bilateral agreement: two parties, a status, a validity window and its flows.

    ``signatures`` and ``statements`` travel with it but are not part of the content
    the parties sign (``content_digest``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    parties: tuple[str, str]
    status: AgreementStatus
    effective_from: AwareDatetime
    effective_until: AwareDatetime | None = None
    flows: tuple[Flow, ...] = ()
    signatures: tuple[AgreementSignature, ...] = ()
    statements: tuple[StatusStatement, ...] = ()

    @field_validator("effective_from", "effective_until", mode="before")
    @classmethod
    def _date_is_midnight_utc(cls, value: object) -> object:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime.combine(value, time(0), tzinfo=UTC)
        return value

    @field_validator("effective_from", "effective_until")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def in_force_window(self, at: datetime) -> bool:
        """Whether ``at`` lies in [effective_from, effective_until)."""
        return self.effective_from <= at and (
            self.effective_until is None or at < self.effective_until
        )

    def content_digest(self) -> str:
        """SHA-256 (hex) of the canonical content the parties sign: everything but signatures
        and statements."""
        return hashlib.sha256(_json(_canonical_content(self))).hexdigest()

    def flow(self, source: str, to: str) -> Flow | None:
        """The flow from ``source`` to ``to``, or None when nothing flows that way."""
        for candidate in self.flows:
            if candidate.source == source and candidate.to == to:
                return candidate
        return None


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    agreements: tuple[Agreement, ...] = ()

    @field_validator("version", mode="before")
    @classmethod
    def _label_as_text(cls, value: object) -> object:
        # An unquoted ``version: 2026-11-01`` reads as a date in YAML; it is a label.
        return value.isoformat() if isinstance(value, date) else value

    @field_validator("agreements")
    @classmethod
    def _unique_ids(cls, value: tuple[Agreement, ...]) -> tuple[Agreement, ...]:
        seen: set[str] = set()
        for agreement in value:
            if agreement.id in seen:
                raise ValueError(f"agreement id {agreement.id!r} appears more than once")
            seen.add(agreement.id)
        return value


@dataclass(frozen=True)
class AgreementSet:
    """A validated agreement set: its human label, its content digest and its agreements by id."""

    label: str
    digest: str
    agreements: tuple[Agreement, ...]
    _canonical: bytes = field(repr=False, compare=False)

    def canonical_bytes(self) -> bytes:
        """The canonical JSON the digest is computed over; ``parse_agreement_set`` reads it back."""
        return self._canonical

    def by_id(self, agreement_id: str) -> Agreement:
        """The agreement called ``agreement_id``; raises PolicyError when there is none."""
        for agreement in self.agreements:
            if agreement.id == agreement_id:
                return agreement
        raise PolicyError(f"agreement set {self.digest[:12]} has no agreement {agreement_id!r}")


class ProblemCode(StrEnum):
    """What ``check_agreement_set`` can find wrong with a structurally valid set."""

    UNKNOWN_PARTICIPANT = "UNKNOWN_PARTICIPANT"
    SAME_PARTIES = "SAME_PARTIES"
    DATES_CONTRADICT = "DATES_CONTRADICT"
    OVERLAP = "OVERLAP"
    FLOW_NOT_BETWEEN_PARTIES = "FLOW_NOT_BETWEEN_PARTIES"
    DUPLICATE_FLOW = "DUPLICATE_FLOW"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    UNKNOWN_SECTION = "UNKNOWN_SECTION"


@dataclass(frozen=True)
class Problem:
    """One semantic problem of an agreement set, located by agreement and field path."""

    code: ProblemCode
    agreement_id: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.agreement_id}: {self.path}: {self.message} [{self.code}]"


def _section_order(alert_type: str) -> Mapping[str, int]:
    try:
        known = SECTIONS[AlertType(alert_type)]
    except ValueError:
        return {}
    return {name: index for index, name in enumerate(known)}


def _canonical_sections(alert_type: str, sections: tuple[str, ...] | str) -> list[str] | str:
    order = _section_order(alert_type)
    if isinstance(sections, str):  # "all": expanded when the type is known, kept otherwise
        return list(order) if order else sections
    return sorted(sections, key=lambda name: (name not in order, order.get(name, 0), name))


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _canonical_signed(entry: AgreementSignature | StatusStatement) -> dict[str, Any]:
    canonical: dict[str, Any] = {
        "party": entry.party,
        "key_id": entry.key_id,
        "signed_at": iso(entry.signed_at),
        "digest": entry.digest,
        "signature": entry.signature,
    }
    if isinstance(entry, StatusStatement):
        canonical["action"] = entry.action.value
    return canonical


def _canonical_agreement(agreement: Agreement) -> dict[str, Any]:
    canonical = _canonical_content(agreement)
    if agreement.signatures:
        canonical["signatures"] = sorted(
            (_canonical_signed(entry) for entry in agreement.signatures),
            key=lambda entry: (entry["party"], entry["signed_at"], entry["signature"]),
        )
    if agreement.statements:
        canonical["statements"] = sorted(
            (_canonical_signed(entry) for entry in agreement.statements),
            key=lambda entry: (entry["signed_at"], entry["party"], entry["signature"]),
        )
    return canonical


def _canonical_content(agreement: Agreement) -> dict[str, Any]:
    flows = sorted(agreement.flows, key=lambda flow: (flow.source, flow.to))
    return {
        "id": agreement.id,
        "parties": sorted(agreement.parties),
        "status": agreement.status.value,
        "effective_from": iso(agreement.effective_from),
        "effective_until": (
            None if agreement.effective_until is None else iso(agreement.effective_until)
        ),
        "flows": [
            {
                "from": flow.source,
                "to": flow.to,
                "types": {
                    name: {
                        "sections": _canonical_sections(name, terms.sections),
                        "max_handling": terms.max_handling.value,
                    }
                    for name, terms in flow.types.items()
                },
            }
            for flow in flows
        ],
    }


def _location(loc: Sequence[int | str], data: object) -> str:
    """``agreements[0] (COD-CAF-2026).flows[1].from`` from a pydantic error location."""
    parts: list[str] = []
    node: object = data
    for step in loc:
        if isinstance(step, int):
            parts.append(f"[{step}]")
            node = node[step] if isinstance(node, list) and step < len(node) else None
            if len(parts) == 2 and parts[0] == "agreements" and isinstance(node, dict):
                agreement_id = node.get("id")
                if isinstance(agreement_id, str):
                    parts.append(f" ({agreement_id})")
        else:
            parts.append(step if not parts else f".{step}")
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts) or "(document)"


def _validate(data: object) -> _Document:
    try:
        return _Document.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            f"{_location(error['loc'], data)}: {error['msg']}"
            for error in exc.errors(include_url=False)
        ]
        raise PolicyError("agreement set is invalid: " + "; ".join(problems)) from exc


def parse_agreement_set(text: str) -> AgreementSet:
    """Parse and structurally validate an agreement set; PolicyError names each bad field path."""
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # the C safe loader when built
    except yaml.YAMLError as exc:
        raise PolicyError(f"agreement set is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError("agreement set must be a mapping with 'version' and 'agreements'")
    document = _validate(data)
    canonical = {
        "version": document.version,
        "agreements": [
            _canonical_agreement(agreement)
            for agreement in sorted(document.agreements, key=lambda agreement: agreement.id)
        ],
    }
    payload = _json(canonical)
    normalised = _validate(canonical)
    return AgreementSet(
        label=normalised.version,
        digest=hashlib.sha256(payload).hexdigest(),
        agreements=normalised.agreements,
        _canonical=payload,
    )


def add_signed(
    text: str, entries: Sequence[tuple[str, AgreementSignature | StatusStatement]]
) -> str:
    """The agreement-set document ``text`` with each (agreement id, signature or statement)
    added to its agreement; a party's earlier signature of the same agreement is replaced.

    The result is YAML without the comments of ``text``; its agreements keep their order.
    """
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise PolicyError(f"agreement set is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError("agreement set must be a mapping with 'version' and 'agreements'")
    document = _validate(data)
    by_id = {agreement.id: index for index, agreement in enumerate(document.agreements)}
    raw = [dict(item) for item in data["agreements"]]
    for agreement_id, entry in entries:
        index = by_id.get(agreement_id)
        if index is None:
            raise PolicyError(f"the agreement set has no agreement {agreement_id!r} to sign")
        canonical = _canonical_signed(entry)
        if isinstance(entry, StatusStatement):
            kept = [s for s in raw[index].get("statements") or () if s != canonical]
            raw[index]["statements"] = [*kept, canonical]
        else:
            kept = [s for s in raw[index].get("signatures") or () if s.get("party") != entry.party]
            raw[index]["signatures"] = [*kept, canonical]
    return yaml.safe_dump({**data, "agreements": raw}, sort_keys=False, allow_unicode=True)


def _windows_overlap(first: Agreement, second: Agreement) -> bool:
    first_until = first.effective_until
    second_until = second.effective_until
    return (second_until is None or first.effective_from < second_until) and (
        first_until is None or second.effective_from < first_until
    )


def _check_one(agreement: Agreement, participants: Collection[str]) -> list[Problem]:
    problems: list[Problem] = []

    def report(code: ProblemCode, path: str, message: str) -> None:
        problems.append(Problem(code, agreement.id, path, message))

    for index, party in enumerate(agreement.parties):
        if party not in participants:
            report(
                ProblemCode.UNKNOWN_PARTICIPANT,
                f"parties[{index}]",
                f"{party!r} is not a participant of the trust store",
            )
    if agreement.parties[0] == agreement.parties[1]:
        report(ProblemCode.SAME_PARTIES, "parties", "an agreement needs two different parties")
    until = agreement.effective_until
    if until is not None and until <= agreement.effective_from:
        report(
            ProblemCode.DATES_CONTRADICT,
            "effective_until",
            f"effective_until {iso(until)} is not after effective_from "
            f"{iso(agreement.effective_from)}",
        )
    directions: set[tuple[str, str]] = set()
    for index, flow in enumerate(agreement.flows):
        path = f"flows[{index}]"
        if (
            flow.source not in agreement.parties
            or flow.to not in agreement.parties
            or flow.source == flow.to
        ):
            report(
                ProblemCode.FLOW_NOT_BETWEEN_PARTIES,
                path,
                f"flow {flow.source} to {flow.to} is not from one party to the other "
                f"({agreement.parties[0]}, {agreement.parties[1]})",
            )
        if (flow.source, flow.to) in directions:
            report(
                ProblemCode.DUPLICATE_FLOW,
                path,
                f"a second flow from {flow.source} to {flow.to}; list each direction once",
            )
        directions.add((flow.source, flow.to))
        for name, terms in flow.types.items():
            order = _section_order(name)
            if not order:
                known = ", ".join(alert_type.value for alert_type in AlertType)
                report(
                    ProblemCode.UNKNOWN_TYPE,
                    f"{path}.types.{name}",
                    f"unknown alert type {name!r} (known: {known})",
                )
                continue
            if isinstance(terms.sections, str):
                continue
            for section in terms.sections:
                if section not in order:
                    report(
                        ProblemCode.UNKNOWN_SECTION,
                        f"{path}.types.{name}.sections",
                        f"{name} has no section {section!r} (known: {', '.join(order)})",
                    )
    return problems


def check_agreement_set(aset: AgreementSet, participants: Collection[str]) -> list[Problem]:
    """The semantic problems of ``aset`` against the participant ids; empty when it is sound."""
    known = frozenset(participants)
    problems: list[Problem] = []
    for agreement in aset.agreements:
        problems.extend(_check_one(agreement, known))
    live = [a for a in aset.agreements if a.status is not AgreementStatus.TERMINATED]
    for first, second in combinations(live, 2):
        if frozenset(first.parties) == frozenset(second.parties) and _windows_overlap(
            first, second
        ):
            problems.append(
                Problem(
                    ProblemCode.OVERLAP,
                    second.id,
                    "effective_from",
                    f"overlaps agreement {first.id} for the same pair "
                    f"{'/'.join(sorted(first.parties))}; at most one agreement that is not "
                    "terminated may cover a pair at any time",
                )
            )
    return problems
