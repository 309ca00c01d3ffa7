"""Sealed sections on a real broker: a hub that holds no encryption key routes a day's alerts
and its audit replays CLEAN; the permitted post reads its sections; a partner with a raw copy
of the outbox and its own key reads none of what its agreements withhold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from border_exchange.adapters.post_store import PostStore
from border_exchange.domain import naming
from border_exchange.domain.audit_values import Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_envelope
from border_exchange.domain.recipients import SectionRecipients
from border_exchange.domain.sealed_reading import read_sections
from border_exchange.domain.section_seal import is_sealed
from border_exchange.domain.signing import verify_trusted
from border_exchange.errors import SectionProblem
from border_exchange.services.auditor import Progress, ReplayRequest, replay
from border_exchange.services.gateway import Gateway
from border_exchange.services.post import BorderPost, PostConfig
from tests.conftest import KafkaCluster
from tests.exchange import make_exchange, running
from tests.waiting import eventually

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


async def test_a_hub_without_keys_routes_and_audits_sealed_alerts_and_the_post_reads_them(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    ex = await make_exchange(kafka, 3, AGREEMENTS, encryption=True)
    origin, reader, other = ex.ids
    privates = ex.sandbox.encryption_keys
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
    verdict = await replay(
        ex.settings,
        trust,
        ReplayRequest(Window(started, datetime.now(UTC) + timedelta(minutes=1)), origin),
        progress=Progress(every=1e9),
    )
    assert verdict.clean, verdict.violations
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
    async with running(post, within=30):
        await eventually(
            lambda: (
                all(store.version_of(origin, r.alert_id) for r in receipts)
                and (store.version_of(origin, receipts[0].alert_id) or (0,))[0] == 2
                and (store.version_of(origin, receipts[6].alert_id) or (0,))[0] == 2
            ),
            within=60.0,
        )
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
