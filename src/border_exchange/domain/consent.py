"""Consent to an agreement: the Ed25519 signatures of both parties, and one-party statements.

An agreement is in force only when each of its two parties signed its canonical
content (``Agreement.content_digest``) with a key of its own from the trust store.
The signing input is a domain-separation tag followed by the length-prefixed
agreement id, content digest, party, key id and signing time, so a signature can
neither be moved to another agreement nor taken for an alert's or a statement's.

Either party alone may suspend or terminate an agreement both signed: a statement
signed by that party takes effect. Resuming a suspended agreement needs a resume
statement of each party, made after the last suspension. A terminated agreement
stays terminated.

A signature counts when its key belongs to the party, was valid when it signed and
has not been revoked since: a revoked key may be in other hands, so what it signed
proves nothing any more; the party signs again with its new key. Every defect
(malformed, unknown key, a digest other than the content's, a signature that does
not verify) is reported naming the agreement, the party and the reason.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from nacl.signing import SigningKey

from border_exchange.domain import framing
from border_exchange.domain.agreements import (
    Agreement,
    AgreementSet,
    AgreementSignature,
    AgreementStatus,
    StatementAction,
    StatusStatement,
)
from border_exchange.domain.signing import SIGNATURE_SIZE, signature_holds
from border_exchange.domain.times import iso
from border_exchange.domain.trust import PublicKey, TrustStore
from border_exchange.errors import KeyNotValidError

AGREEMENT_TAG: Final = b"border-exchange/agreement/v1\x00"
STATEMENT_TAG: Final = b"border-exchange/agreement-statement/v1\x00"


class SignatureDefect(StrEnum):
    """Why a party's signature or statement does not count."""

    MISSING = "MISSING"
    NOT_A_PARTY = "NOT_A_PARTY"
    MALFORMED = "MALFORMED"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    KEY_NOT_VALID = "KEY_NOT_VALID"
    KEY_REVOKED = "KEY_REVOKED"
    OTHER_DIGEST = "OTHER_DIGEST"
    BAD_SIGNATURE = "BAD_SIGNATURE"


@dataclass(frozen=True, slots=True)
class Defect:
    """One signature of ``party`` on ``agreement_id`` that does not count, and why."""

    agreement_id: str
    party: str
    code: SignatureDefect
    detail: str

    def __str__(self) -> str:
        return f"agreement {self.agreement_id}: {self.party}: {self.detail} [{self.code}]"


@dataclass(frozen=True, slots=True)
class Consent:
    """What the signatures of one agreement establish."""

    agreement_id: str
    digest: str
    """The content digest both parties must have signed."""
    signed_by: tuple[str, ...]
    """The parties whose signature counts, sorted."""
    missing: tuple[Defect, ...]
    """Per party without a signature that counts: why (MISSING or the defect)."""
    defects: tuple[Defect, ...]
    """Every signature or statement in the document that does not count."""
    status: AgreementStatus
    """The status in effect: the signed one, changed by valid statements."""
    status_detail: str = ""
    """Who changed the status by statement, and when; empty when the signed status holds."""

    @property
    def signed_by_both(self) -> bool:
        """Whether both parties' signatures count: the agreement may be in force."""
        return not self.missing

    def not_signed_detail(self) -> str:
        """Why the agreement is not in force for want of signatures (empty if it is signed)."""
        if not self.missing:
            return ""
        parts = [
            f"no signature of {d.party}" if d.code is SignatureDefect.MISSING else str(d.detail)
            for d in self.missing
        ]
        return f"agreement {self.agreement_id} is not signed by both parties: " + "; ".join(parts)


def _signature_text(key: SigningKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message).signature).decode("ascii")


def _signing_input(
    agreement_id: str,
    digest: str,
    party: str,
    key_id: str,
    signed_at: datetime,
    action: StatementAction | None,
) -> bytes:
    """What a party signs: its consent to the agreement content with ``digest``, or, with
    ``action``, its statement that the agreement is suspended, terminated or resumed."""
    parts = (agreement_id, digest, party, key_id, iso(signed_at))
    if action is None:
        return AGREEMENT_TAG + b"".join(framing.text(part) for part in parts)
    return STATEMENT_TAG + b"".join(framing.text(part) for part in (*parts, action))


def _signed(
    agreement: Agreement,
    party: str,
    key_id: str,
    key: SigningKey,
    signed_at: datetime,
    action: StatementAction | None = None,
) -> dict[str, Any]:
    """The fields of ``party``'s signature over ``agreement``'s content (a statement of
    ``action`` when given), made with ``key`` (id ``key_id``)."""
    digest = agreement.content_digest()
    message = _signing_input(agreement.id, digest, party, key_id, signed_at, action)
    return {
        "party": party,
        "key_id": key_id,
        "signed_at": signed_at,
        "digest": digest,
        "signature": _signature_text(key, message),
    }


def sign_agreement(
    agreement: Agreement, party: str, key_id: str, key: SigningKey, signed_at: datetime
) -> AgreementSignature:
    """``party``'s signature of ``agreement``'s content, made with ``key`` (id ``key_id``)."""
    return AgreementSignature(**_signed(agreement, party, key_id, key, signed_at))


def sign_statement(
    agreement: Agreement,
    party: str,
    action: StatementAction,
    key_id: str,
    key: SigningKey,
    signed_at: datetime,
) -> StatusStatement:
    """``party``'s signed statement that ``action`` applies to ``agreement``."""
    return StatusStatement(
        **_signed(agreement, party, key_id, key, signed_at, action), action=action
    )


def _defect(
    agreement: Agreement, entry: AgreementSignature | StatusStatement, trust: TrustStore
) -> Defect | None:
    """Why ``entry`` does not count for ``agreement``, or None when it does."""
    what = "statement" if isinstance(entry, StatusStatement) else "signature"
    party = entry.party

    def fail(code: SignatureDefect, detail: str) -> Defect:
        return Defect(agreement.id, party, code, f"{what} of {party} {detail}")

    if party not in agreement.parties:
        return fail(SignatureDefect.NOT_A_PARTY, "is not by a party of the agreement")
    try:
        raw = base64.b64decode(entry.signature, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SIGNATURE_SIZE:
        return fail(
            SignatureDefect.MALFORMED, f"is not base64 of a {SIGNATURE_SIZE}-byte signature"
        )
    key = next((k for k in _keys(trust, party) if k.key_id == entry.key_id), None)
    if key is None:
        return fail(
            SignatureDefect.UNKNOWN_KEY, f"names key {entry.key_id!r}, unknown to the trust store"
        )
    if key.revoked_at is not None:
        return fail(
            SignatureDefect.KEY_REVOKED,
            f"was made with key {key.key_id}, revoked at {iso(key.revoked_at)}",
        )
    problem = key.problem_at(entry.signed_at)
    if problem is not None:
        return fail(SignatureDefect.KEY_NOT_VALID, f"does not count: {problem[1]}")
    digest = agreement.content_digest()
    if entry.digest != digest:
        return fail(
            SignatureDefect.OTHER_DIGEST,
            f"is over content digest {entry.digest[:16]}…, but the agreement's content hashes "
            f"to {digest[:16]}…: it was changed after signing",
        )
    action = entry.action if isinstance(entry, StatusStatement) else None
    message = _signing_input(agreement.id, digest, party, key.key_id, entry.signed_at, action)
    if not signature_holds(raw + message, key.raw):
        return fail(SignatureDefect.BAD_SIGNATURE, f"does not verify with key {key.key_id}")
    return None


def _keys(trust: TrustStore, party: str) -> tuple[PublicKey, ...]:
    try:
        return trust.keys_of(party)
    except KeyNotValidError:
        return ()


def _status(agreement: Agreement, statements: list[StatusStatement]) -> tuple[AgreementStatus, str]:
    status = agreement.status
    detail = ""
    resumed: dict[str, datetime] = {}
    for statement in sorted(statements, key=lambda s: (s.signed_at, s.party)):
        when = iso(statement.signed_at)
        if status is AgreementStatus.TERMINATED:
            break
        if statement.action is StatementAction.TERMINATE:
            status, detail = (
                AgreementStatus.TERMINATED,
                f"terminated by {statement.party} at {when}",
            )
        elif statement.action is StatementAction.SUSPEND:
            status, detail = AgreementStatus.SUSPENDED, f"suspended by {statement.party} at {when}"
            resumed.clear()
        elif status is AgreementStatus.SUSPENDED:
            resumed[statement.party] = statement.signed_at
            if set(resumed) == set(agreement.parties):
                status = AgreementStatus.ACTIVE
                detail = f"resumed by {' and '.join(sorted(resumed))} at {when}"
                resumed.clear()
    if status is AgreementStatus.SUSPENDED and resumed:
        waiting = sorted(set(agreement.parties) - set(resumed))
        detail += f"; resumed by {', '.join(sorted(resumed))} only, {', '.join(waiting)} has not"
    return status, detail


def consent_of(agreement: Agreement, trust: TrustStore) -> Consent:
    """What the signatures and statements of ``agreement`` establish under ``trust``."""
    defects: list[Defect] = []
    counted: dict[str, None] = {}
    for signature in agreement.signatures:
        defect = _defect(agreement, signature, trust)
        if defect is None:
            counted[signature.party] = None
        else:
            defects.append(defect)
    missing = []
    for party in sorted(set(agreement.parties)):
        if party in counted:
            continue
        own = [d for d in defects if d.party == party]
        missing.append(
            own[-1]
            if own
            else Defect(agreement.id, party, SignatureDefect.MISSING, f"no signature of {party}")
        )
    statements = []
    for statement in agreement.statements:
        defect = _defect(agreement, statement, trust)
        if defect is None:
            statements.append(statement)
        else:
            defects.append(defect)
    status, detail = _status(agreement, statements)
    return Consent(
        agreement.id,
        agreement.content_digest(),
        tuple(sorted(counted)),
        tuple(missing),
        tuple(defects),
        status,
        detail,
    )


def consents(aset: AgreementSet, trust: TrustStore) -> Mapping[str, Consent]:
    """The consent of every agreement of ``aset``, by agreement id."""
    return MappingProxyType({a.id: consent_of(a, trust) for a in aset.agreements})


def signature_defects(aset: AgreementSet, trust: TrustStore) -> list[Defect]:
    """Every signature or statement of ``aset`` that does not count (missing ones aside)."""
    return [defect for consent in consents(aset, trust).values() for defect in consent.defects]
