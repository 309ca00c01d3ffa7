"""Hit reports and their acknowledgements as values: fields, checks, encoding and signature.

A hit report says that a border post found the subject of a partner's alert; it is
signed by the post's own key (listed under its participant in the trust store, see
``docs/hits.md``) so that a post can sign offline and queue the signed bytes. An
acknowledgement is the origin's answer, signed by one of the origin's keys. Both are
Avro single-object records whose last field is the signature: it covers a
domain-separation tag and every byte before it (the writer's fingerprint included), so
it verifies whatever reader schema a later version brings. Verification raises.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from border_exchange.domain import limits
from border_exchange.domain.catalog import AlertType, Priority, is_participant_id
from border_exchange.domain.encoding import PREFIX_SIZE, decode_record, encode_record
from border_exchange.domain.envelope import Header
from border_exchange.domain.naming import is_role_name
from border_exchange.domain.schemas import SINGLE_OBJECT_MAGIC, registry
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import DecodeError, SignatureError, SignatureProblem, ValidationError

HIT_REPORT_SCHEMA: Final = "bx.HitReport"
HIT_ACK_SCHEMA: Final = "bx.HitAcknowledgement"
ENVELOPE_SCHEMA: Final = "bx.AlertEnvelope"
HIT_TAG: Final = b"border-exchange/hit-report/v1\x00"
ACK_TAG: Final = b"border-exchange/hit-ack/v1\x00"
SIGNATURE_SIZE: Final = 64
_SIGNATURE_FIELD: Final = b"\x80\x01"
"""The Avro length prefix of a 64-byte ``bytes`` value (zigzag varint of 64)."""
VALIDITY: Final = timedelta(days=90)
"""How long a hit report or an acknowledgement is accepted after it was signed: a post
may be offline 30 days with a report queued, and the router remembers its id that long."""
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far in the future a hit time may be at the post before it is refused."""


class MessageKind(StrEnum):
    """What an outbox record carries, read from its writer schema's fingerprint."""

    ALERT = "ALERT"
    HIT_REPORT = "HIT_REPORT"
    HIT_ACK = "HIT_ACK"


_KINDS: Final = {
    ENVELOPE_SCHEMA: MessageKind.ALERT,
    HIT_REPORT_SCHEMA: MessageKind.HIT_REPORT,
    HIT_ACK_SCHEMA: MessageKind.HIT_ACK,
}


def message_kind(value: bytes | None) -> MessageKind | None:
    """The kind of message ``value`` holds, or None when no known schema wrote it."""
    if value is None or len(value) < PREFIX_SIZE or value[:2] != SINGLE_OBJECT_MAGIC:
        return None
    schema = registry().by_fingerprint.get(bytes(value[2:PREFIX_SIZE]))
    return None if schema is None else _KINDS.get(schema.name)


class HitAction(StrEnum):
    """What the post did when it found the subject."""

    ARRESTED = "ARRESTED"
    SEIZED = "SEIZED"
    LOCATED = "LOCATED"
    OBSERVED = "OBSERVED"
    NOT_ACTED = "NOT_ACTED"


@dataclass(frozen=True, slots=True)
class HitReport:
    """A post's report of a hit on a partner's alert (``bx.HitReport``)."""

    hit_id: str
    reporter: str
    post: str
    key_id: str
    alert_origin: str
    alert_id: str
    alert_version: int
    alert_type: AlertType
    priority: Priority
    hit_at: datetime
    reported_at: datetime
    expires_at: datetime
    action: HitAction
    place: str
    contact: str
    not_acted_reason: str | None = None
    remarks: str | None = None
    language: str | None = None
    signature: bytes = b""

    @property
    def reporter_principal(self) -> str:
        """The owner name of the post's key: ``<participant>.post.<post>``."""
        return f"{self.reporter}.post.{self.post}"


@dataclass(frozen=True, slots=True)
class HitAcknowledgement:
    """The origin's acknowledgement of a hit report (``bx.HitAcknowledgement``)."""

    ack_id: str
    hit_id: str
    origin: str
    key_id: str
    reporter: str
    post: str
    alert_id: str
    acknowledged_at: datetime
    expires_at: datetime
    instructions: str
    desk_contact: str | None = None
    language: str | None = None
    signature: bytes = b""


# ------------------------------------------------------------------------ checks


def _text(problems: list[str], name: str, value: str | None, limit: int, required: bool) -> None:
    if value is None or not value.strip():
        if required:
            problems.append(f"{name}: must not be empty")
        return
    if len(value) > limit:
        problems.append(f"{name}: {len(value):,} characters, more than the limit of {limit:,}")


def _time(problems: list[str], name: str, value: datetime) -> None:
    if value.tzinfo is None:
        problems.append(f"{name}: must carry a time zone")


def report_problems(report: HitReport, now: datetime | None = None) -> list[str]:
    """Every field of ``report`` that breaks a rule, named; empty when it is valid.

    With ``now``, a hit time more than ``MAX_CLOCK_SKEW`` after it is refused too.
    """
    problems: list[str] = []
    field_limit, text_limit = limits.MAX_HIT_FIELD_CHARS, limits.MAX_HIT_TEXT_CHARS
    for name in ("hit_id", "key_id", "alert_id", "place", "contact"):
        _text(problems, name, getattr(report, name), field_limit, True)
    for name in ("reporter", "alert_origin"):
        if not is_participant_id(getattr(report, name)):
            problems.append(f"{name}: {getattr(report, name)!r} is not a participant id")
    if report.reporter == report.alert_origin:
        problems.append("alert_origin: a service does not report hits on its own alerts here")
    if not is_role_name(report.post):
        problems.append(f"post: {report.post!r} is not a post name")
    if report.alert_version < 1:
        problems.append(f"alert_version: {report.alert_version} (versions start at 1)")
    _text(problems, "remarks", report.remarks, text_limit, False)
    _text(problems, "not_acted_reason", report.not_acted_reason, text_limit, False)
    if report.action is HitAction.NOT_ACTED and not (report.not_acted_reason or "").strip():
        problems.append("not_acted_reason: required when the action is NOT_ACTED")
    for name in ("hit_at", "reported_at", "expires_at"):
        _time(problems, name, getattr(report, name))
    if not problems:
        if report.hit_at > report.reported_at + MAX_CLOCK_SKEW:
            problems.append(
                f"hit_at: {report.hit_at.isoformat()} is after the report was signed "
                f"({report.reported_at.isoformat()})"
            )
        if now is not None and report.hit_at > now + MAX_CLOCK_SKEW:
            problems.append(f"hit_at: {report.hit_at.isoformat()} is in the future")
        if report.expires_at <= report.reported_at:
            problems.append("expires_at: must be after reported_at")
    return problems


def ack_problems(ack: HitAcknowledgement) -> list[str]:
    """Every field of ``ack`` that breaks a rule, named; empty when it is valid."""
    problems: list[str] = []
    field_limit = limits.MAX_HIT_FIELD_CHARS
    for name in ("ack_id", "hit_id", "key_id", "alert_id"):
        _text(problems, name, getattr(ack, name), field_limit, True)
    for name in ("origin", "reporter"):
        if not is_participant_id(getattr(ack, name)):
            problems.append(f"{name}: {getattr(ack, name)!r} is not a participant id")
    if not is_role_name(ack.post):
        problems.append(f"post: {ack.post!r} is not a post name")
    _text(problems, "instructions", ack.instructions, limits.MAX_HIT_TEXT_CHARS, True)
    _text(problems, "desk_contact", ack.desk_contact, field_limit, False)
    for name in ("acknowledged_at", "expires_at"):
        _time(problems, name, getattr(ack, name))
    if not problems and ack.expires_at <= ack.acknowledged_at:
        problems.append("expires_at: must be after acknowledged_at")
    return problems


def _checked(problems: list[str], what: str) -> None:
    if problems:
        raise ValidationError(f"invalid {what}", tuple(problems))


def report_on(
    header: Header,
    *,
    reporter: str,
    post: str,
    key_id: str,
    hit_at: datetime,
    action: HitAction,
    place: str,
    contact: str,
    now: datetime,
    remarks: str | None = None,
    not_acted_reason: str | None = None,
    language: str | None = None,
    hit_id: str | None = None,
) -> HitReport:
    """A report of a hit on the alert whose version ``header`` the post holds, signed now."""
    return HitReport(
        hit_id=hit_id or uuid.uuid4().hex,
        reporter=reporter,
        post=post,
        key_id=key_id,
        alert_origin=header.origin,
        alert_id=header.alert_id,
        alert_version=header.version,
        alert_type=header.alert_type,
        priority=header.priority,
        hit_at=hit_at,
        reported_at=now,
        expires_at=now + VALIDITY,
        action=action,
        place=place,
        contact=contact,
        not_acted_reason=not_acted_reason,
        remarks=remarks,
        language=language,
    )


def ack_of(
    report: HitReport,
    *,
    key_id: str,
    instructions: str,
    now: datetime,
    desk_contact: str | None = None,
    language: str | None = None,
    ack_id: str | None = None,
) -> HitAcknowledgement:
    """The origin's acknowledgement of ``report``, signed now."""
    return HitAcknowledgement(
        ack_id=ack_id or uuid.uuid4().hex,
        hit_id=report.hit_id,
        origin=report.alert_origin,
        key_id=key_id,
        reporter=report.reporter,
        post=report.post,
        alert_id=report.alert_id,
        acknowledged_at=now,
        expires_at=now + VALIDITY,
        instructions=instructions,
        desk_contact=desk_contact,
        language=language,
    )


# ---------------------------------------------------------------------- encoding


def _report_record(report: HitReport) -> dict[str, Any]:
    return asdict(report) | {
        "alert_type": report.alert_type.value,
        "priority": report.priority.value,
        "action": report.action.value,
        "signature": report.signature or bytes(SIGNATURE_SIZE),
    }


def _ack_record(ack: HitAcknowledgement) -> dict[str, Any]:
    return asdict(ack) | {"signature": ack.signature or bytes(SIGNATURE_SIZE)}


def _decoded(value: bytes, schema: str) -> Mapping[str, Any]:
    name, record = decode_record(value)
    if name != schema:
        raise DecodeError(f"expected a {schema} record, found a {name}")
    return record


def decode_report(value: bytes) -> HitReport:
    """The hit report in ``value``; raises ``DecodeError`` when it is not a valid one."""
    r = _decoded(value, HIT_REPORT_SCHEMA)
    try:
        report = HitReport(
            **{name: r[name] for name in HitReport.__slots__}
            | {
                "alert_type": AlertType(r["alert_type"]),
                "priority": Priority(r["priority"]),
                "action": HitAction(r["action"]),
            }
        )
    except ValueError as exc:
        raise DecodeError(f"malformed hit report: {exc}") from exc
    problems = report_problems(report)
    if problems:
        raise DecodeError("malformed hit report: " + "; ".join(problems))
    return report


def decode_ack(value: bytes) -> HitAcknowledgement:
    """The acknowledgement in ``value``; raises ``DecodeError`` when it is not a valid one."""
    r = _decoded(value, HIT_ACK_SCHEMA)
    ack = HitAcknowledgement(**{name: r[name] for name in HitAcknowledgement.__slots__})
    problems = ack_problems(ack)
    if problems:
        raise DecodeError("malformed hit acknowledgement: " + "; ".join(problems))
    return ack


# ---------------------------------------------------------------------- signature


def _sealed(encoded: bytes, tag: bytes, signing_key: SigningKey) -> bytes:
    body = encoded[: -SIGNATURE_SIZE - len(_SIGNATURE_FIELD)]
    signature = signing_key.sign(tag + body).signature
    return body + _SIGNATURE_FIELD + bytes(signature)


def seal_report(report: HitReport, signing_key: SigningKey, now: datetime | None = None) -> bytes:
    """``report`` checked, encoded and signed with the post's key: the bytes to send."""
    _checked(report_problems(report, now), "hit report")
    encoded = encode_record(HIT_REPORT_SCHEMA, _report_record(replace(report, signature=b"")))
    return _sealed(encoded, HIT_TAG, signing_key)


def seal_ack(ack: HitAcknowledgement, signing_key: SigningKey) -> bytes:
    """``ack`` checked, encoded and signed with the origin's key: the bytes to send."""
    _checked(ack_problems(ack), "hit acknowledgement")
    encoded = encode_record(HIT_ACK_SCHEMA, _ack_record(replace(ack, signature=b"")))
    return _sealed(encoded, ACK_TAG, signing_key)


def signed_message(value: bytes, kind: MessageKind) -> bytes:
    """``signature || signing input`` of a sealed report or acknowledgement, as
    ``crypto_sign_open`` takes it; raises ``SignatureError`` when the layout is wrong."""
    tag = HIT_TAG if kind is MessageKind.HIT_REPORT else ACK_TAG
    cut = len(value) - SIGNATURE_SIZE - len(_SIGNATURE_FIELD)
    if cut < PREFIX_SIZE or value[cut : cut + len(_SIGNATURE_FIELD)] != _SIGNATURE_FIELD:
        raise SignatureError(
            "the signature is not the last 64 bytes of the record", SignatureProblem.SECTION_LAYOUT
        )
    return value[cut + len(_SIGNATURE_FIELD) :] + tag + value[:cut]


def verify_report(value: bytes, trust: TrustStore) -> HitReport:
    """The report in ``value`` once its post's signature verifies; raises ``DecodeError``,
    ``KeyNotValidError`` or ``SignatureError``."""
    report = decode_report(value)
    key = trust.post_key_for(report.reporter, report.post, report.key_id, report.reported_at)
    verify_signed(value, MessageKind.HIT_REPORT, key.raw)
    return report


def verify_ack(value: bytes, trust: TrustStore) -> HitAcknowledgement:
    """The acknowledgement in ``value`` once its origin's signature verifies; raises as
    ``verify_report``."""
    ack = decode_ack(value)
    key = trust.key_for(ack.origin, ack.key_id, ack.acknowledged_at)
    verify_signed(value, MessageKind.HIT_ACK, key.raw)
    return ack


def verify_signed(value: bytes, kind: MessageKind, public_key: bytes) -> None:
    """Check the signature of a sealed report or acknowledgement; raises ``SignatureError``."""
    try:
        crypto_sign_open(signed_message(value, kind), public_key)
    except BadSignatureError:
        raise SignatureError(
            f"the {kind.value.lower().replace('_', ' ')} signature does not verify",
            SignatureProblem.BAD_SIGNATURE,
        ) from None
