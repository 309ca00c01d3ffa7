"""Signed agreements on a real broker: the router, the feed copies' reference, the post's check."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from border_exchange.adapters.agreement_topic import AgreementTopic
from border_exchange.adapters.post_store import PostStore
from border_exchange.demo.sandbox import make_sandbox
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.permitted import AGREEMENT_HEADER, NotPermitted, reference_value
from border_exchange.domain.signing import redact
from border_exchange.services.post import BorderPost, PostConfig
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, make_exchange, running
from tests.waiting import eventually

pytestmark = pytest.mark.kafka

AGREEMENTS = """
version: signed
agreements:
  - id: P0-P1
    parties: [P0, P1]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: P0
        to: P1
        types:
          WANTED_PERSON: {sections: [identity, offence], max_handling: H3}
  - id: P0-P2
    parties: [P0, P2]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: P0
        to: P2
        types:
          WANTED_PERSON: {sections: all, max_handling: H3}
"""


async def _one_sided(kafka: KafkaCluster) -> Exchange:
    """A shares wanted persons with B (signed by both) and C (signed by A only)."""
    ex = await make_exchange(kafka, 3, AGREEMENTS)
    a, _, c = ex.ids
    text = AGREEMENTS
    for i, pid in enumerate(ex.ids):
        text = text.replace(f"P{i}", pid)
    ex.sandbox = make_sandbox(ex.ids, text, signers={f"{a}-{c}": [a]})
    return ex


async def _headers(ex: Exchange, topic: str) -> list[dict[str, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        **ex.settings.client_kwargs(),
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        return [dict(r.headers) for records in batch.values() for r in records]
    finally:
        await consumer.stop()


async def test_the_router_delivers_only_under_agreements_both_parties_signed(
    kafka: KafkaCluster,
) -> None:
    ex = await _one_sided(kafka)
    a, b, c = ex.ids
    router = ex.router()
    envelope = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    async with running(router):
        await ex.publish(envelope)
        to_b = await ex.feed(b, a, expect=1)
        audit = [decode_record(v)[1] for v in await ex.read(naming.audit_topic(a), expect=1)]

    assert [e.header.message_id for e in to_b] == [envelope.header.message_id]
    assert await ex.feed(c, a) == []
    [decision] = [r for r in audit if r["kind"] == "DECISION"]
    outcomes = {o["participant"]: o for o in decision["outcomes"]}
    assert outcomes[c]["reason"] == "NOT_SIGNED"
    assert outcomes[c]["agreement_id"] == f"{a}-{c}"
    assert router.metrics.value("denied_total", {"reason": "NOT_SIGNED"}) == 1
    # The copy names the agreement it was delivered under: id and content digest.
    [headers] = await _headers(ex, naming.feed_topic(b, a))
    digest = ex.sandbox.agreements.by_id(f"{a}-{b}").content_digest()
    assert headers[AGREEMENT_HEADER] == reference_value(f"{a}-{b}", digest)


async def test_the_post_refuses_copies_forged_into_its_feed_and_goes_on(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ex = await _one_sided(kafka)
    a, b, c = ex.ids
    router = ex.router()
    routed = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    feed = naming.feed_topic(b, a)
    good_reference = reference_value(
        f"{a}-{b}", ex.sandbox.agreements.by_id(f"{a}-{b}").content_digest()
    )
    one_sided = reference_value(
        f"{a}-{c}", ex.sandbox.agreements.by_id(f"{a}-{c}").content_digest()
    )
    # Forged straight into B's feed by the administrator, each with the origin's valid
    # signature: no agreement named; sections the agreement withholds; an agreement
    # between other parties; and afterwards a copy as the router would have written it.
    outside = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    withheld = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    elsewhere = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    after = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    forged = [
        (outside, None),
        (redact(withheld, {"identity", "offence", "photo"}), good_reference),
        (redact(elsewhere, {"identity"}), one_sided),
        (redact(after, {"identity", "offence"}), good_reference),
    ]
    with PostStore.open(tmp_path / "post.db") as store:
        post = BorderPost(
            ex.settings,
            PostConfig(b, "border", (a,)),
            store,
            ex.sandbox.trust,
            AgreementTopic(ex.settings, ex.sandbox.trust, b),
        )
        async with running(post, within=30):
            async with running(router):
                await ex.publish(routed)
                await ex.feed(b, a, expect=1)
            producer = AIOKafkaProducer(**ex.settings.client_kwargs(), acks="all")
            await producer.start()
            try:
                for envelope, reference in forged:
                    headers = [] if reference is None else [(AGREEMENT_HEADER, reference)]
                    await producer.send_and_wait(
                        feed,
                        encode_envelope(envelope),
                        key=envelope.header.alert_id.encode(),
                        headers=headers,
                    )
            finally:
                await producer.stop()
            await eventually(lambda: sum(store.offsets().get((feed, p), 0) for p in range(3)) >= 5)

        assert store.get(a, routed.header.alert_id) is not None, store.rejected()
        assert store.get(a, after.header.alert_id) is not None, store.rejected()  # went on
        for envelope in (outside, withheld, elsewhere):
            assert store.get(a, envelope.header.alert_id) is None
        reasons = sorted(r.reason.split(":")[0] for r in store.rejected())
        assert reasons == sorted(
            [
                NotPermitted.NO_AGREEMENT_REFERENCE,
                NotPermitted.SECTION_WITHHELD,
                NotPermitted.UNKNOWN_AGREEMENT,
            ]
        )
        assert post.applied.rejected == 3
