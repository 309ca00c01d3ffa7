"""Agreements in force only when both parties signed them; one party may suspend or terminate."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from nacl.signing import SigningKey

from border_exchange.adapters.agreement_files import AgreementSource
from border_exchange.demo.sandbox import Sandbox, make_sandbox, sign_agreements
from border_exchange.domain.agreements import (
    Agreement,
    AgreementSet,
    AgreementSignature,
    AgreementStatus,
    StatementAction,
    add_signed,
    parse_agreement_set,
)
from border_exchange.domain.catalog import AlertType, HandlingCode, Operation
from border_exchange.domain.consent import (
    SignatureDefect,
    consent_of,
    consents,
    sign_agreement,
    sign_statement,
    signature_defects,
)
from border_exchange.domain.policy import (
    Deliver,
    Deny,
    DenyReason,
    PolicyIndex,
    PolicyInput,
    decide,
)
from border_exchange.domain.trust import PublicKey, TrustStore

NOW = datetime.now(UTC).replace(microsecond=0)

TEXT = f"""
version: consent
agreements:
  - id: CAF-COD
    parties: [CAF, COD]
    status: active
    effective_from: {(NOW - timedelta(days=30)).isoformat()}
    flows:
      - from: COD
        to: CAF
        types:
          WANTED_PERSON: {{sections: [identity, offence], max_handling: H2}}
"""


@pytest.fixture
def box() -> Sandbox:
    return make_sandbox(
        ["CAF", "COD"], TEXT, start=NOW - timedelta(days=60), signers={"CAF-COD": ()}
    )


def _agreement(box: Sandbox) -> Agreement:
    return box.agreements.by_id("CAF-COD")


def _sign(box: Sandbox, party: str, agreement: Agreement | None = None) -> AgreementSignature:
    return sign_agreement(
        agreement or _agreement(box), party, box.key_ids[party], box.keys[party], NOW
    )


def _with(box: Sandbox, *entries: object) -> AgreementSet:
    pairs = [("CAF-COD", entry) for entry in entries]
    return parse_agreement_set(add_signed(box.agreements_text, pairs))  # type: ignore[arg-type]


def _decide(aset: AgreementSet, trust: TrustStore) -> Deliver | Deny:
    index = PolicyIndex.build(aset, ("CAF", "COD"), consents(aset, trust))
    alert = PolicyInput("COD", AlertType.WANTED_PERSON, HandlingCode.H1, Operation.CREATE, "a")
    return decide(alert, NOW, index).outcomes["CAF"]


def test_an_agreement_signed_by_both_is_in_force(box: Sandbox) -> None:
    aset = _with(box, _sign(box, "CAF"), _sign(box, "COD"))
    consent = consent_of(aset.by_id("CAF-COD"), box.trust)
    assert consent.signed_by == ("CAF", "COD")
    assert consent.signed_by_both
    outcome = _decide(aset, box.trust)
    assert isinstance(outcome, Deliver)
    assert outcome.sections == ("identity", "offence")


def test_unsigned_and_one_side_signed_agreements_are_not_in_force_naming_the_missing_party(
    box: Sandbox,
) -> None:
    unsigned = _decide(box.agreements, box.trust)
    assert isinstance(unsigned, Deny)
    assert unsigned.reason is DenyReason.NOT_SIGNED
    assert "no signature of CAF" in unsigned.detail
    assert "no signature of COD" in unsigned.detail
    one = _decide(_with(box, _sign(box, "COD")), box.trust)
    assert isinstance(one, Deny)
    assert one.reason is DenyReason.NOT_SIGNED
    assert "no signature of CAF" in one.detail
    assert "COD" not in one.detail.split(":", 1)[1]


def test_a_signature_with_a_key_of_someone_else_does_not_verify(box: Sandbox) -> None:
    forged = _sign(box, "CAF").model_copy(
        update={
            "signature": sign_agreement(
                _agreement(box), "CAF", box.key_ids["CAF"], SigningKey.generate(), NOW
            ).signature
        }
    )
    aset = _with(box, forged, _sign(box, "COD"))
    [defect] = signature_defects(aset, box.trust)
    assert (defect.agreement_id, defect.party, defect.code) == (
        "CAF-COD",
        "CAF",
        SignatureDefect.BAD_SIGNATURE,
    )
    outcome = _decide(aset, box.trust)
    assert isinstance(outcome, Deny)
    assert outcome.reason is DenyReason.NOT_SIGNED
    assert "does not verify" in outcome.detail


def test_a_signature_by_a_revoked_key_does_not_count(box: Sandbox) -> None:
    aset = _with(box, _sign(box, "CAF"), _sign(box, "COD"))
    caf = box.trust.participants["CAF"]
    revoked = replace(caf.keys[0], revoked_at=NOW + timedelta(days=1), revocation_reason="lost")
    members = {**box.trust.participants, "CAF": replace(caf, keys=(revoked,))}
    trust = replace(box.trust, participants=MappingProxyType(members))
    outcome = _decide(aset, trust)
    assert isinstance(outcome, Deny)
    assert outcome.reason is DenyReason.NOT_SIGNED
    assert "revoked" in outcome.detail
    [defect] = signature_defects(aset, trust)
    assert defect.code is SignatureDefect.KEY_REVOKED
    assert defect.party == "CAF"


def test_an_agreement_altered_after_signing_is_not_in_force(box: Sandbox) -> None:
    signed = add_signed(
        box.agreements_text, [("CAF-COD", _sign(box, "CAF")), ("CAF-COD", _sign(box, "COD"))]
    )
    altered = parse_agreement_set(signed.replace("max_handling: H2", "max_handling: H3"))
    assert altered.by_id("CAF-COD").content_digest() != _agreement(box).content_digest()
    defects = signature_defects(altered, box.trust)
    assert {(d.party, d.code) for d in defects} == {
        ("CAF", SignatureDefect.OTHER_DIGEST),
        ("COD", SignatureDefect.OTHER_DIGEST),
    }
    outcome = _decide(altered, box.trust)
    assert isinstance(outcome, Deny)
    assert outcome.reason is DenyReason.NOT_SIGNED
    assert "changed after signing" in outcome.detail


def test_malformed_and_unknown_key_signatures_are_named(box: Sandbox) -> None:
    malformed = _sign(box, "CAF").model_copy(update={"signature": "not base64!"})
    unknown = _sign(box, "COD").model_copy(update={"key_id": "COD-1999-99"})
    aset = _with(box, malformed, unknown)
    found = {(d.agreement_id, d.party, d.code) for d in signature_defects(aset, box.trust)}
    assert found == {
        ("CAF-COD", "CAF", SignatureDefect.MALFORMED),
        ("CAF-COD", "COD", SignatureDefect.UNKNOWN_KEY),
    }
    short = _sign(box, "CAF").model_copy(update={"signature": base64.b64encode(b"x" * 10).decode()})
    assert signature_defects(_with(box, short), box.trust)[0].code is SignatureDefect.MALFORMED


def test_a_signature_cannot_be_replayed_as_a_statement_or_by_another_party(box: Sandbox) -> None:
    signature = _sign(box, "CAF")
    as_statement = sign_statement(
        _agreement(box), "CAF", StatementAction.SUSPEND, box.key_ids["CAF"], box.keys["CAF"], NOW
    ).model_copy(update={"signature": signature.signature})
    aset = _with(box, _sign(box, "CAF"), _sign(box, "COD"), as_statement)
    assert [d.code for d in signature_defects(aset, box.trust)] == [SignatureDefect.BAD_SIGNATURE]
    assert consent_of(aset.by_id("CAF-COD"), box.trust).status is AgreementStatus.ACTIVE


def _statement(box: Sandbox, party: str, action: StatementAction, after: int) -> object:
    return sign_statement(
        _agreement(box),
        party,
        action,
        box.key_ids[party],
        box.keys[party],
        NOW + timedelta(minutes=after),
    )


def test_one_party_suspends_resuming_needs_both(box: Sandbox) -> None:
    both = (_sign(box, "CAF"), _sign(box, "COD"))
    suspended = _with(box, *both, _statement(box, "CAF", StatementAction.SUSPEND, 1))
    consent = consent_of(suspended.by_id("CAF-COD"), box.trust)
    assert consent.status is AgreementStatus.SUSPENDED
    assert "suspended by CAF" in consent.status_detail
    outcome = _decide(suspended, box.trust)
    assert isinstance(outcome, Deny)
    assert outcome.reason is DenyReason.SUSPENDED

    half = _with(
        box,
        *both,
        _statement(box, "CAF", StatementAction.SUSPEND, 1),
        _statement(box, "COD", StatementAction.RESUME, 2),
    )
    consent = consent_of(half.by_id("CAF-COD"), box.trust)
    assert consent.status is AgreementStatus.SUSPENDED
    assert "CAF has not" in consent.status_detail
    assert isinstance(_decide(half, box.trust), Deny)

    resumed = _with(
        box,
        *both,
        _statement(box, "CAF", StatementAction.SUSPEND, 1),
        _statement(box, "COD", StatementAction.RESUME, 2),
        _statement(box, "CAF", StatementAction.RESUME, 3),
    )
    assert consent_of(resumed.by_id("CAF-COD"), box.trust).status is AgreementStatus.ACTIVE
    assert isinstance(_decide(resumed, box.trust), Deliver)


def test_a_resume_made_before_the_suspension_does_not_lift_it(box: Sandbox) -> None:
    aset = _with(
        box,
        _sign(box, "CAF"),
        _sign(box, "COD"),
        _statement(box, "COD", StatementAction.RESUME, 1),
        _statement(box, "CAF", StatementAction.SUSPEND, 2),
        _statement(box, "CAF", StatementAction.RESUME, 3),
    )
    assert consent_of(aset.by_id("CAF-COD"), box.trust).status is AgreementStatus.SUSPENDED


def test_one_party_terminates_for_good(box: Sandbox) -> None:
    aset = _with(
        box,
        _sign(box, "CAF"),
        _sign(box, "COD"),
        _statement(box, "COD", StatementAction.TERMINATE, 1),
        _statement(box, "CAF", StatementAction.RESUME, 2),
        _statement(box, "COD", StatementAction.RESUME, 3),
    )
    consent = consent_of(aset.by_id("CAF-COD"), box.trust)
    assert consent.status is AgreementStatus.TERMINATED
    assert "terminated by COD" in consent.status_detail
    outcome = _decide(aset, box.trust)
    assert isinstance(outcome, Deny)
    assert outcome.reason is DenyReason.TERMINATED


def test_signatures_are_not_part_of_the_signed_content_but_of_the_set_digest(box: Sandbox) -> None:
    signed = _with(box, _sign(box, "CAF"))
    assert signed.by_id("CAF-COD").content_digest() == _agreement(box).content_digest()
    assert signed.digest != box.agreements.digest
    again = parse_agreement_set(signed.canonical_bytes().decode())
    assert again.digest == signed.digest
    assert again.by_id("CAF-COD").signatures == signed.by_id("CAF-COD").signatures


def test_the_agreement_file_refuses_a_bad_signature_and_keeps_the_last_valid_set(
    box: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "agreements.yaml"
    good = add_signed(
        box.agreements_text, [("CAF-COD", _sign(box, "CAF")), ("CAF-COD", _sign(box, "COD"))]
    )
    path.write_text(good)
    source = AgreementSource(path, ("CAF", "COD"), tmp_path / "history", box.trust)
    first = source.load()
    path.write_text(good.replace("max_handling: H2", "max_handling: H3") + "\n")
    assert source.poll() is None
    assert source.current is first
    assert consents(first, box.trust)["CAF-COD"].signed_by_both


def test_the_sandbox_signs_every_agreement_of_its_participants() -> None:
    text = TEXT.replace("CAF-COD", "A")
    box = make_sandbox(["CAF", "COD"], text)
    assert all(c.signed_by_both for c in consents(box.agreements, box.trust).values())
    only_one = sign_agreements(text, box.keys, box.key_ids, NOW, {"A": ["CAF"]})
    assert consents(parse_agreement_set(only_one), box.trust)["A"].signed_by == ("CAF",)


def test_a_key_valid_only_after_the_signature_does_not_count(box: Sandbox) -> None:
    caf = box.trust.participants["CAF"]
    later = PublicKey(
        "CAF",
        caf.keys[0].key_id,
        caf.keys[0].raw,
        NOW + timedelta(days=1),
        NOW + timedelta(days=400),
    )
    members = {**box.trust.participants, "CAF": replace(caf, keys=(later,))}
    trust = replace(box.trust, participants=MappingProxyType(members))
    aset = _with(box, _sign(box, "CAF"), _sign(box, "COD"))
    assert [d.code for d in signature_defects(aset, trust)] == [SignatureDefect.KEY_NOT_VALID]
