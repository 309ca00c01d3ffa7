"""Sealed sections on a real broker: a hub that holds no encryption key routes a day's alerts
and its audit replays CLEAN; the permitted post reads its sections (with an X25519 key, and
with the hybrid post-quantum one); a partner with a raw copy of the outbox and its own key
reads none of what its agreements withhold; a sealed record the router cannot verify is
quarantined with its reason and the next good record of its partition is delivered."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from border_exchange.adapters.post_store import PostStore
from border_exchange.domain import naming
from border_exchange.domain.alerts import AlertInput
from border_exchange.domain.audit_values import Verdict, Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_envelope, decode_record
from border_exchange.domain.envelope import Envelope, Section
from border_exchange.domain.policy import PolicyInput
from border_exchange.domain.recipients import SectionRecipients
from border_exchange.domain.sealed_reading import read_sections
from border_exchange.domain.section_seal import RecipientPrivateKey, is_sealed
from border_exchange.domain.signing import seal, section_digest, verify_trusted
from border_exchange.domain.trust import EncryptionAlgorithm
from border_exchange.errors import SectionProblem
from border_exchange.services.auditor import Progress, ReplayRequest, replay
from border_exchange.services.gateway import Gateway
from border_exchange.services.post import BorderPost, PostConfig
from tests.conftest import KafkaCluster
from tests.encryption_keys import encryption_key
from tests.exchange import Exchange, make_exchange, running

pytestmark = pytest.mark.kafka

AGREEMENTS = """
version: sealed
agreements:
  - id: P0-P1
    parties: [P0, P1]
    status: active
    effective_from: 2020-01-01T00:00:00Z
    flows:
      - from: P0
        to: P1
        types:
          WANTED_PERSON: {sections: [identity, documents, description, offence, contact],
                          max_handling: H3}
          VEHICLE_NOTICE: {sections: all, max_handling: H3}
  - id: P0-P2
    parties: [P0, P2]
    status: active
    effective_from: 2020-01-01T00:00:00Z
    flows:
      - from: P0
        to: P2
        types:
          VEHICLE_NOTICE: {sections: all, max_handling: H3}
"""


def _give_encryption_keys(
    ex: Exchange, hybrid: Collection[str] = ()
) -> dict[str, RecipientPrivateKey]:
    """An encryption key for every participant, in the exchange's trust store: X25519, or
    the hybrid ML-KEM-768 + X25519 for the participants in ``hybrid``."""
    now = datetime.now(UTC)
    privates: dict[str, RecipientPrivateKey] = {}
    members = {}
    for pid, member in ex.sandbox.trust.participants.items():
        algorithm = (
            EncryptionAlgorithm.MLKEM768_X25519 if pid in hybrid else EncryptionAlgorithm.X25519
        )
        privates[pid], public = encryption_key(
            pid, f"{pid}-enc", now - timedelta(days=1), now + timedelta(days=400), algorithm
        )
        members[pid] = replace(member, encryption_keys=(public,))
    trust = replace(ex.sandbox.trust, participants=MappingProxyType(members))
    ex.sandbox = replace(ex.sandbox, trust=trust)
    return privates


async def _until(condition: object, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]  # a callable returning bool
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.3)


async def _replayed_clean(ex: Exchange, started: datetime, origin: str) -> Verdict:
    """``audit replay`` of ``origin`` since ``started``, with the hub's trust store and no
    private key: it must be CLEAN."""
    verdict = await replay(
        ex.settings,
        ex.sandbox.trust,
        ReplayRequest(Window(started, datetime.now(UTC) + timedelta(minutes=1)), origin),
        progress=Progress(every=1e9),
    )
    assert verdict.clean, verdict.violations
    return verdict


async def test_a_hub_without_keys_routes_and_audits_sealed_alerts_and_the_post_reads_them(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    ex = await make_exchange(kafka, 3, AGREEMENTS)
    origin, reader, other = ex.ids
    privates = _give_encryption_keys(ex)
    trust = ex.sandbox.trust
    recipients = SectionRecipients.of(ex.sandbox.agreements, trust)
    gateway = Gateway(
        ex.settings,
        origin,
        ex.sandbox.keys[origin],
        ex.sandbox.key_ids[origin],
        trust,
        recipients=recipients,
    )
    alerts = [ex.alert(AlertType.WANTED_PERSON, origin) for _ in range(6)]
    alerts += [ex.alert(AlertType.VEHICLE_NOTICE, origin) for _ in range(6)]
    async with gateway, running(ex.router()):
        receipts = await gateway.publish_batch(alerts)
        updated = await gateway.publish(
            alerts[0].model_copy(update={"alert_id": receipts[0].alert_id})
        )
        cancelled = await gateway.cancel(receipts[6].alert_id, "recovered")
        to_reader = await ex.feed(reader, origin, expect=14)
        to_other = await ex.feed(other, origin, expect=7)
    assert len(to_reader) == 14  # 12 alerts, an update, a cancel
    assert len(to_other) == 7  # the vehicle notices and their cancel
    assert updated.version == 2
    assert cancelled.version == 2

    # Every section on every topic is sealed: the hub read none in clear.
    outbox = [decode_envelope(v) for v in await ex.read(naming.outbox_topic(origin))]
    assert all(is_sealed(s.content) for e in outbox for s in e.sections if s.content)
    photo_copies = [e.section("photo") for e in to_reader if e.section("photo")]
    assert photo_copies
    assert all(s is not None and s.content is None for s in photo_copies)  # redacted

    # The audit of the period, with the hub's trust store and no private key: CLEAN.
    verdict = await _replayed_clean(ex, started, origin)
    assert verdict.stats.decisions == 14

    # The reader's post reads every section its agreement gives it, from its feed.
    store = PostStore.open(tmp_path / "post.db")
    post = BorderPost(
        ex.settings,
        PostConfig(reader, "kasindi", (origin,)),
        store,
        trust,
        None,
        [privates[reader]],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(post.run(stop))
    try:
        await _until(
            lambda: (
                all(store.version_of(origin, r.alert_id) for r in receipts)
                and (store.version_of(origin, receipts[0].alert_id) or (0,))[0] == 2
                and (store.version_of(origin, receipts[6].alert_id) or (0,))[0] == 2
            )
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    wanted = store.get(origin, receipts[1].alert_id)
    assert wanted is not None
    assert set(wanted.sections) == {"identity", "documents", "description", "offence", "contact"}
    assert wanted.sections["identity"]["family_names"]
    assert "photo" in wanted.withheld
    assert store.rejected() == []
    assert store.get(origin, receipts[6].alert_id) is None or (
        store.get(origin, receipts[6].alert_id).sections == {}  # type: ignore[union-attr]
    )
    store.close()

    # The other partner, with a raw copy of the outbox and its own key, reads no wanted
    # person: no key was wrapped for it.
    for envelope in outbox:
        verify_trusted(envelope, trust)
        read = read_sections(envelope, other, [privates[other]])
        if envelope.header.alert_type is AlertType.WANTED_PERSON:
            assert read.sections == {}
            assert all(r.startswith(SectionProblem.NO_WRAPPED_KEY) for r in read.refused.values())
        else:
            assert set(read.sections) == envelope.present_sections


def _sealed_by(ex: Exchange, recipients: SectionRecipients, alert: AlertInput) -> Envelope:
    """``alert`` sealed by its origin for the recipients the agreements permit, as its
    gateway would (a fresh message id; issued now)."""
    now = datetime.now(UTC)
    plan = recipients.plan(
        PolicyInput(alert.origin, alert.alert_type, alert.handling_code, alert.operation, "x"),
        now,
    )
    return seal(
        alert,
        signing_key=ex.sandbox.keys[alert.origin],
        key_id=ex.sandbox.key_ids[alert.origin],
        message_id=uuid.uuid4().hex,
        issued_at=now,
        recipients=plan.sections,
    )


async def _post_reads(
    ex: Exchange, store: PostStore, reader: str, origin: str, keys: list[RecipientPrivateKey],
    alert_ids: Collection[str],
) -> None:  # fmt: skip
    """Run ``reader``'s post on its feed of ``origin`` until it holds all of ``alert_ids``."""
    post = BorderPost(
        ex.settings, PostConfig(reader, "kasindi", (origin,)), store, ex.sandbox.trust, None, keys
    )
    stop = asyncio.Event()
    task = asyncio.create_task(post.run(stop))
    try:
        await _until(lambda: all(store.version_of(origin, a) for a in alert_ids))
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_sections_sealed_to_a_hybrid_post_quantum_key_are_routed_and_opened_at_the_post(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    ex = await make_exchange(kafka, 2, AGREEMENTS)
    origin, reader = ex.ids
    privates = _give_encryption_keys(ex, hybrid={reader})
    assert privates[reader].algorithm is EncryptionAlgorithm.MLKEM768_X25519
    recipients = SectionRecipients.of(ex.sandbox.agreements, ex.sandbox.trust)
    sent = [_sealed_by(ex, recipients, ex.alert(AlertType.WANTED_PERSON, origin)) for _ in range(3)]
    async with running(ex.router()):
        await ex.publish(*sent)
        copies = await ex.feed(reader, origin, expect=len(sent))
    assert len(copies) == len(sent)
    identity = copies[0].section("identity")
    assert identity is not None
    assert identity.content is not None
    _, sealed = decode_record(identity.content)
    ours = [w for w in sealed["recipients"] if w["participant"] == reader]
    assert [(w["key_id"], w["kem"]) for w in ours] == [(f"{reader}-enc", "MLKEM768_X25519")]
    assert len(ours[0]["wrapped"]) > 1088  # an ML-KEM-768 ciphertext is inside the wrap

    await _replayed_clean(ex, started, origin)

    with PostStore.open(tmp_path / "post.db") as store:
        ids = [e.header.alert_id for e in sent]
        await _post_reads(ex, store, reader, origin, [privates[reader]], ids)
        for envelope in sent:
            held = store.get(origin, envelope.header.alert_id)
            assert held is not None
            opened = read_sections(envelope, reader, [privates[reader]]).sections
            assert held.sections["identity"] == _as_stored(opened["identity"])
            assert held.sections["identity"]["family_names"]
            assert "photo" in held.withheld  # not permitted to the reader: never wrapped to it
        assert store.rejected() == []
        assert store.keys_needed() == {f"{reader}-enc": len(sent)}


def _as_stored(section: Mapping[str, Any]) -> Any:
    """A decoded section as the post store gives it back: JSON, dates in ISO form."""
    return json.loads(json.dumps(section, default=lambda value: value.isoformat()))


def _with_section(envelope: Envelope, name: str, section: Section) -> Envelope:
    sections = tuple(section if s.name == name else s for s in envelope.sections)
    return replace(envelope, sections=sections)


async def test_a_sealed_record_the_router_cannot_verify_is_quarantined_and_the_partition_goes_on(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    ex = await make_exchange(kafka, 2, AGREEMENTS)
    origin, reader = ex.ids
    privates = _give_encryption_keys(ex)
    recipients = SectionRecipients.of(ex.sandbox.agreements, ex.sandbox.trust)

    def sealed(alert_id: str | None = None) -> Envelope:
        changes = {} if alert_id is None else {"alert_id": alert_id}
        return _sealed_by(ex, recipients, ex.alert(AlertType.WANTED_PERSON, origin, **changes))

    def tampered_ciphertext() -> Envelope:
        envelope = sealed()
        section = envelope.section("identity")
        assert section is not None
        assert section.content is not None
        content = bytearray(section.content)
        content[40] ^= 0x01  # inside the ciphertext of the sealed record
        return _with_section(envelope, "identity", replace(section, content=bytes(content)))

    def moved_from_another_alert(resigned_digest: bool) -> Envelope:
        envelope, other = sealed(), sealed()
        section = other.section("identity")
        assert section is not None
        assert section.content is not None
        assert section.salt is not None
        if resigned_digest:  # the digest recomputed for this message: the signature breaks
            header = envelope.header
            digest = section_digest(
                header.alert_id, header.message_id, "identity", section.salt, section.content
            )
            section = replace(section, digest=digest)
        return _with_section(envelope, "identity", section)

    # The router's reason is BAD_SIGNATURE for both; its detail says which check failed.
    digest = "section identity: content does not match its signed digest"
    bad = {
        "tampered ciphertext": (tampered_ciphertext(), digest),
        "sealed section of another alert": (moved_from_another_alert(False), digest),
        "same, digest made for this message": (moved_from_another_alert(True), "does not verify"),
    }
    goods: list[Envelope] = []
    async with running(ex.router()):
        for envelope, _ in bad.values():
            # The next good record: same alert id, so same key and same partition.
            goods.append(sealed(envelope.header.alert_id))
            await ex.publish(envelope, goods[-1])
        delivered = await ex.feed(reader, origin, expect=len(goods))
        quarantined = await ex.read(naming.QUARANTINE_TOPIC)

    assert sorted(e.header.message_id for e in delivered) == sorted(
        g.header.message_id for g in goods
    )
    refused = {
        record["message_id"]: record
        for _, record in map(decode_record, quarantined)
        if record["source_topic"] == naming.outbox_topic(origin)
    }
    for what, (envelope, detail) in bad.items():
        record = refused[envelope.header.message_id]
        assert record["reason"] == "BAD_SIGNATURE", (what, record["detail"])
        assert detail in record["detail"], (what, record["detail"])
        assert record["original_value"]  # the evidence is kept
    assert len(refused) == len(bad)

    await _replayed_clean(ex, started, origin)

    with PostStore.open(tmp_path / "post.db") as store:
        ids = [g.header.alert_id for g in goods]
        await _post_reads(ex, store, reader, origin, [privates[reader]], ids)
        assert store.rejected() == []
        for good in goods:
            held = store.get(origin, good.header.alert_id)
            assert held is not None
            opened = read_sections(good, reader, [privates[reader]]).sections
            assert held.sections["identity"] == _as_stored(opened["identity"])
