"""Sealed alerts end to end without a broker: the origin seals each section for exactly the
partners its signed agreements permit, the router (holding no key) verifies and decides,
redaction keeps the signature, and each post reads what it may and no more."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from border_exchange.adapters.agreement_files import section_recipients
from border_exchange.adapters.post_store import Accepted, PostStore
from border_exchange.demo.sandbox import Sandbox, make_sandbox, sign_agreements
from border_exchange.domain.agreements import parse_agreement_set
from border_exchange.domain.catalog import SECTIONS, AlertType, Operation
from border_exchange.domain.consent import consents
from border_exchange.domain.encoding import decode_envelope, encode_envelope
from border_exchange.domain.envelope import Envelope, Section
from border_exchange.domain.naming import feed_state_topic, feed_topic, outbox_topic
from border_exchange.domain.policy import PolicyIndex, PolicyInput
from border_exchange.domain.recipients import SectionRecipients
from border_exchange.domain.routing import Inbound, PartitionState, Routed, RoutingRules, route
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.sealed_reading import read_sections
from border_exchange.domain.section_seal import RecipientPrivateKey, is_sealed, recipients_of
from border_exchange.domain.signing import redact, seal, section_content, sign, verify_trusted
from border_exchange.domain.trust import EncryptionKey, TrustStore
from border_exchange.errors import DecodeError, SectionProblem, SignatureError, SignatureProblem
from border_exchange.services.post import check_record
from tests.encryption_keys import encryption_key

NOW = datetime.now(UTC).replace(microsecond=0)
TEXT = f"""
version: sealed-test
agreements:
  - id: COD-CAF
    parties: [COD, CAF]
    status: active
    effective_from: {(NOW - timedelta(days=30)).isoformat()}
    flows:
      - from: COD
        to: CAF
        types:
          WANTED_PERSON: {{sections: [identity, documents, description, offence, contact],
                          max_handling: H3}}
  - id: COD-SSD
    parties: [COD, SSD]
    status: active
    effective_from: {(NOW - timedelta(days=30)).isoformat()}
    flows:
      - from: COD
        to: SSD
        types:
          VEHICLE_NOTICE: {{sections: all, max_handling: H3}}
"""
MEMBERS = ("CAF", "COD", "SSD")


def _with_encryption_keys(
    box: Sandbox,
) -> tuple[TrustStore, dict[str, RecipientPrivateKey]]:
    privates: dict[str, RecipientPrivateKey] = {}
    participants = {}
    for pid, member in box.trust.participants.items():
        privates[pid], key = encryption_key(
            pid, f"{pid}-enc-1", NOW - timedelta(days=60), NOW + timedelta(days=300)
        )
        participants[pid] = replace(member, encryption_keys=(key,))
    return replace(box.trust, participants=MappingProxyType(participants)), privates


BOX = make_sandbox(list(MEMBERS), TEXT, start=NOW - timedelta(days=60))
TRUST, PRIVATE = _with_encryption_keys(BOX)
RECIPIENTS = SectionRecipients.of(BOX.agreements, TRUST)
POLICY = PolicyIndex.build(BOX.agreements, TRUST.participants, consents(BOX.agreements, TRUST))


def _sealed(alert_type: AlertType = AlertType.WANTED_PERSON, encrypt: bool = True) -> Envelope:
    alert = sample_alert(alert_type, origin="COD", alert_id=uuid.uuid4().hex, at=NOW)
    plan = RECIPIENTS.plan(
        PolicyInput("COD", alert_type, alert.handling_code, alert.operation, "x"), NOW
    )
    return seal(
        alert,
        signing_key=BOX.keys["COD"],
        key_id=BOX.key_ids["COD"],
        message_id=uuid.uuid4().hex,
        issued_at=NOW,
        recipients=plan.sections if encrypt else None,
    )


def _route(envelope: Envelope) -> Routed:
    """The router's own checks and decision, with the trust store alone (no private key)."""
    value = encode_envelope(envelope)
    inbound = Inbound(outbox_topic("COD"), 0, 0, envelope.header.alert_id.encode(), value)
    result = route(
        inbound,
        expected_partition=None,
        trust=TRUST,
        policy=POLICY,
        now=NOW,
        rules=RoutingRules(),
        state=PartitionState(),
    )
    assert isinstance(result, Routed), result
    return result


def _caf_with_keys(keys: tuple[EncryptionKey, ...]) -> TrustStore:
    caf = replace(TRUST.participants["CAF"], encryption_keys=keys)
    return replace(TRUST, participants=MappingProxyType({**TRUST.participants, "CAF": caf}))


def test_each_section_is_wrapped_for_exactly_the_permitted_partners_and_the_origin() -> None:
    envelope = _sealed()
    present = {section.name: section.content for section in envelope.sections}
    for section in envelope.sections:
        assert section.content is not None
        assert is_sealed(section.content)
        wrapped_for = {participant for participant, _ in recipients_of(section.content, present)}
        permitted = {"CAF"} if section.name != "photo" and section.name != "remarks" else set()
        assert wrapped_for == {"COD"} | permitted, section.name


def test_the_router_without_keys_verifies_decides_and_redacts_and_the_copy_verifies() -> None:
    envelope = _sealed()
    routed = _route(envelope)
    assert routed.decision.recipients == ("CAF",)
    ((recipient, copy),) = routed.copies
    assert recipient == "CAF"
    assert copy.present_sections == {"identity", "documents", "description", "offence", "contact"}
    redacted = copy.section("photo")
    assert redacted is not None
    assert redacted.content is None  # ciphertext and wrapped keys dropped together
    verify_trusted(decode_envelope(encode_envelope(copy)), TRUST)
    with pytest.raises(DecodeError, match="SealedSection"):
        section_content(copy, "identity")  # nothing in clear for the hub to read


def test_the_permitted_post_reads_its_sections_from_its_feed_copy() -> None:
    envelope = _sealed()
    ((_, copy),) = _route(envelope).copies
    value = encode_envelope(copy)
    _, read = check_record(
        feed_topic("CAF", "COD"), value, TRUST, "CAF", None, None, [PRIVATE["CAF"]]
    )
    assert set(read.sections) == set(copy.present_sections)
    assert read.refused == {}
    assert read.sections["identity"]["family_names"]
    assert {key_id for key_id, _ in read.section_keys.values()} == {"CAF-enc-1"}


def test_a_partner_not_permitted_cannot_read_a_section_from_a_raw_copy_of_the_outbox() -> None:
    """CAF holding the unredacted outbox record (photo and remarks included) and its key."""
    envelope = _sealed()
    raw = decode_envelope(encode_envelope(envelope))
    read = read_sections(raw, "CAF", [PRIVATE["CAF"]])
    assert set(read.refused) == {"photo", "remarks"}
    assert all(r.startswith(SectionProblem.NO_WRAPPED_KEY) for r in read.refused.values())
    assert "identity" in read.sections
    ssd = read_sections(raw, "SSD", [PRIVATE["SSD"]])
    assert ssd.sections == {}
    assert set(ssd.refused) == set(envelope.present_sections)
    # The hub holds no private key at all: every section stays closed to it.
    assert read_sections(raw, "CAF", []).sections == {}


def test_a_tampered_ciphertext_breaks_the_signed_digest_and_the_router_quarantines() -> None:
    envelope = _sealed()
    first = envelope.sections[0]
    assert first.content is not None
    flipped = bytearray(first.content)
    flipped[-3] ^= 1
    tampered = replace(
        envelope,
        sections=(
            Section(first.name, first.digest, first.salt, bytes(flipped)),
            *envelope.sections[1:],
        ),
    )
    with pytest.raises(SignatureError) as caught:
        verify_trusted(tampered, TRUST)
    assert caught.value.reason is SignatureProblem.DIGEST_MISMATCH
    inbound = Inbound(outbox_topic("COD"), 0, 0, b"k", encode_envelope(tampered))
    result = route(
        inbound,
        expected_partition=None,
        trust=TRUST,
        policy=POLICY,
        now=NOW,
        rules=RoutingRules(),
        state=PartitionState(),
    )
    assert not isinstance(result, Routed)


def test_a_recipient_without_an_encryption_key_is_named_unreachable() -> None:
    no_key = _caf_with_keys(())
    plan = SectionRecipients.of(BOX.agreements, no_key).plan(
        PolicyInput(
            "COD",
            AlertType.WANTED_PERSON,
            sample_alert(AlertType.WANTED_PERSON).handling_code,
            sample_alert(AlertType.WANTED_PERSON).operation,
            "x",
        ),
        NOW,
    )
    assert [who for who, _ in plan.unreachable] == ["CAF"]
    assert all(
        [r.key.owner for r in recipients] == ["COD"] for recipients in plan.sections.values()
    )


def test_rotation_wraps_to_the_new_key_and_the_post_still_opens_the_old_one() -> None:
    old_copy = _route(_sealed()).copies[0][1]
    new_private, new_key = encryption_key(
        "CAF", "CAF-enc-2", NOW - timedelta(hours=1), NOW + timedelta(days=400)
    )
    rotated = _caf_with_keys((*TRUST.participants["CAF"].encryption_keys, new_key))
    plan = SectionRecipients.of(BOX.agreements, rotated).plan(
        PolicyInput(
            "COD",
            AlertType.WANTED_PERSON,
            old_copy.header.handling_code,
            old_copy.header.operation,
            "x",
        ),
        NOW,
    )
    assert {r.key.key_id for r in plan.sections["identity"]} == {"COD-enc-1", "CAF-enc-2"}
    both = [new_private, PRIVATE["CAF"]]
    assert "identity" in read_sections(old_copy, "CAF", both).sections
    assert (
        read_sections(old_copy, "CAF", [new_private])
        .refused["identity"]
        .startswith(SectionProblem.UNKNOWN_KEY)
    )


def test_an_old_unencrypted_record_still_verifies_routes_and_reads() -> None:
    envelope = _sealed(encrypt=False)
    assert not any(is_sealed(s.content or b"") for s in envelope.sections)
    ((_, copy),) = _route(envelope).copies
    _, read = check_record(feed_topic("CAF", "COD"), encode_envelope(copy), TRUST, "CAF")
    assert set(read.sections) == set(copy.present_sections)
    assert set(read.sections) <= set(SECTIONS[AlertType.WANTED_PERSON])


def test_redacting_an_already_sealed_copy_keeps_it_verifiable() -> None:
    envelope = _sealed()
    verify_trusted(redact(envelope, ["identity"]), TRUST)


def test_the_post_store_says_which_encryption_keys_its_alerts_in_force_still_need(
    tmp_path: Path,
) -> None:
    """Wrapped to the old key and to the rotated one: both needed until the old alert ends."""
    topic = feed_topic("CAF", "COD")
    old = _route(_sealed()).copies[0][1]
    new_private, new_key = encryption_key(
        "CAF", "CAF-enc-2", NOW - timedelta(hours=1), NOW + timedelta(days=400)
    )
    rotated = SectionRecipients.of(
        BOX.agreements, _caf_with_keys((*TRUST.participants["CAF"].encryption_keys, new_key))
    )
    alert = sample_alert(AlertType.WANTED_PERSON, origin="COD", alert_id=uuid.uuid4().hex, at=NOW)
    plan = rotated.plan(
        PolicyInput("COD", AlertType.WANTED_PERSON, alert.handling_code, alert.operation, "x"), NOW
    )
    new = seal(
        alert,
        signing_key=BOX.keys["COD"],
        key_id=BOX.key_ids["COD"],
        message_id=uuid.uuid4().hex,
        issued_at=NOW,
        recipients=plan.sections,
    )
    keys = [new_private, PRIVATE["CAF"]]
    with PostStore.open(tmp_path / "post.db") as store:
        outcomes = []
        for offset, envelope in enumerate((old, new)):
            _, read = check_record(topic, encode_envelope(envelope), TRUST, "CAF", None, None, keys)
            # The new one as a bootstrap stores it: from the feed's state topic.
            where = feed_state_topic("CAF", "COD") if envelope is new else topic
            outcomes.append(Accepted(where, 0, offset, envelope, dict(read.sections)))
        store.apply(outcomes)
        assert store.keys_needed() == {"CAF-enc-1": 1, "CAF-enc-2": 1}
        header = replace(
            old.header,
            version=2,
            operation=Operation.CANCEL,
            message_id="cancel-1",
            cancel_reason="arrested",
        )
        store.apply([Accepted(topic, 0, 2, sign(header, (), BOX.keys["COD"]), {})])
        assert store.keys_needed() == {"CAF-enc-2": 1}  # CAF-enc-1 may now be destroyed


def test_the_gateway_reads_who_to_seal_for_from_the_signed_agreement_file(tmp_path: Path) -> None:
    path = tmp_path / "agreements.signed.yaml"
    path.write_text(BOX.agreements_text, encoding="utf-8")
    alert = PolicyInput(
        "COD",
        AlertType.WANTED_PERSON,
        sample_alert(AlertType.WANTED_PERSON).handling_code,
        sample_alert(AlertType.WANTED_PERSON).operation,
        "x",
    )
    from_file = section_recipients(path, TRUST).plan(alert, NOW).sections
    assert from_file == RECIPIENTS.plan(alert, NOW).sections
    # Signed by COD alone (with the same keys): not in force, so CAF is sealed out.
    unsigned = parse_agreement_set(
        sign_agreements(TEXT, BOX.keys, BOX.key_ids, NOW, {"COD-CAF": ["COD"]})
    )
    one_signature = SectionRecipients.of(unsigned, TRUST)
    assert {r.key.owner for r in one_signature.plan(alert, NOW).sections["identity"]} == {"COD"}
