"""The router on a real broker: permitted partners get permitted sections, the rest is refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from nacl.signing import SigningKey

from border_exchange.adapters.agreement_files import AgreementSource
from border_exchange.bootstrap import PolicySource
from border_exchange.demo.sandbox import (
    Sandbox,
    make_sandbox,
    open_agreements,
    sign_agreements,
    trust_store_yaml,
)
from border_exchange.domain import naming
from border_exchange.domain.agreements import StatementAction, add_signed, parse_agreement_set
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.consent import sign_statement
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.signing import verify_trusted
from border_exchange.services.router import PartitionWorker, PolicyView
from tests.clock import days, iso
from tests.conftest import KafkaCluster
from tests.exchange import (
    Exchange,
    create_topics,
    make_exchange,
    random_ids,
    running,
    with_extra_key,
)
from tests.waiting import eventually

pytestmark = pytest.mark.kafka

AGREEMENTS = """
version: "router-test"
agreements:
  - id: A-B
    parties: [P0, P1]
    status: active
    effective_from: SINCE
    flows:
      - from: P0
        to: P1
        types:
          WANTED_PERSON: {sections: [identity, offence, contact], max_handling: H2}
      - from: P1
        to: P0
        types:
          VEHICLE_NOTICE: {sections: all, max_handling: H2}
  - id: A-C
    parties: [P0, P2]
    status: active
    effective_from: SINCE
    flows:
      - from: P0
        to: P2
        types:
          WANTED_PERSON: {sections: all, max_handling: H1}
""".replace("SINCE", iso(days(-30)))


async def test_a_withheld_section_is_absent_and_the_copy_still_verifies(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 3, AGREEMENTS)
    a, b, c = ex.ids
    envelope = ex.seal(ex.alert(AlertType.WANTED_PERSON, a, handling_code="H1"))
    async with running(ex.router()):
        await ex.publish(envelope)
        to_b = await ex.feed(b, a, expect=1)
        to_c = await ex.feed(c, a, expect=1)

    assert [e.header.message_id for e in to_b] == [envelope.header.message_id]
    copy = to_b[0]
    assert copy.present_sections == {"identity", "offence", "contact"}
    assert {"photo", "documents"} <= set(copy.section_names) - copy.present_sections
    verify_trusted(copy, ex.sandbox.trust)  # the origin's signature survives redaction
    assert to_c[0].present_sections == envelope.present_sections
    verify_trusted(to_c[0], ex.sandbox.trust)
    # Nothing flows back to the origin: the recorded decision denies it as the origin,
    # and the copies went to b and c only.
    audit = [decode_record(v)[1] for v in await ex.read(naming.audit_topic(a))]
    (decision,) = [
        r
        for r in audit
        if r["kind"] == "DECISION" and r["message_id"] == envelope.header.message_id
    ]
    outcomes = {o["participant"]: o for o in decision["outcomes"]}
    assert (outcomes[a]["delivered"], outcomes[a]["reason"]) == (False, "ORIGIN")
    assert {p for p, o in outcomes.items() if o["delivered"]} == {b, c}
    assert outcomes[b]["sections"] == ["identity", "offence", "contact"]


async def test_every_refused_record_is_quarantined_with_its_reason_and_the_stream_goes_on(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]))
    a, b = ex.ids
    revoked = with_extra_key(ex, a, f"{a}-lost", revoked_at=days(-1))
    stranger = SigningKey.generate()
    now = datetime.now(UTC)

    def good() -> Envelope:
        return ex.seal(ex.alert(AlertType.VEHICLE_NOTICE, a))

    signed = good()
    tampered = replace(signed, signature=bytes([signed.signature[0] ^ 1]) + signed.signature[1:])
    expired = ex.seal(
        ex.alert(AlertType.VEHICLE_NOTICE, a, expires_at=now - timedelta(days=1)),
        issued_at=now - timedelta(days=2),
    )
    future = ex.seal(ex.alert(AlertType.VEHICLE_NOTICE, a), issued_at=now + timedelta(hours=1))
    replayed = good()
    bad = {
        "MALFORMED": ("raw", b"not an alert"),
        "UNKNOWN_KEY": (
            "env",
            ex.seal(ex.alert(AlertType.VEHICLE_NOTICE, a), key=stranger, key_id=f"{a}-nope"),
        ),
        "BAD_SIGNATURE": ("env", tampered),
        "ORIGIN_MISMATCH": ("foreign", good()),
        "EXPIRED": ("env", expired),
        "FUTURE_DATED": ("env", future),
        "REPLAYED": ("env", replayed),
        "KEY_REVOKED": (
            "env",
            ex.seal(ex.alert(AlertType.VEHICLE_NOTICE, a), key=revoked, key_id=f"{a}-lost"),
        ),
    }
    goods: list[Envelope] = []
    async with running(ex.router()):
        await ex.publish(replayed)
        for kind, item in bad.values():
            if kind == "raw":
                await ex.publish(raw=[(naming.outbox_topic(a), b"k", item)])  # type: ignore[list-item]
            elif kind == "foreign":
                envelope = item
                assert isinstance(envelope, Envelope)
                await ex.publish(
                    raw=[
                        (
                            naming.outbox_topic(b),
                            envelope.header.alert_id.encode(),
                            encode_envelope(envelope),
                        )
                    ]
                )
            else:
                assert isinstance(item, Envelope)
                await ex.publish(item)
            goods.append(good())
            await ex.publish(goods[-1])
        delivered = await ex.feed(b, a, expect=len(goods) + 1)
        quarantined = await ex.read(naming.QUARANTINE_TOPIC)

    expected = {replayed.header.message_id} | {g.header.message_id for g in goods}
    assert {e.header.message_id for e in delivered} == expected
    assert len(delivered) == len(expected)  # the replay was not delivered twice
    ours = [
        record
        for _, record in map(decode_record, quarantined)
        if record["source_topic"] in {naming.outbox_topic(a), naming.outbox_topic(b)}
    ]
    assert sorted(r["reason"] for r in ours) == sorted(bad), [r["detail"] for r in ours]
    assert all(r["original_value"] for r in ours)  # the original bytes are kept


async def test_updates_follow_the_agreements_and_a_cancel_reaches_every_earlier_recipient(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 3, open_agreements([("P0", "P1"), ("P0", "P2")]))
    a, b, c = ex.ids
    create = ex.alert(AlertType.WANTED_PERSON, a)
    alert_id = create.alert_id
    assert alert_id is not None
    router = ex.router()
    async with running(router):
        await ex.publish(ex.seal(create))
        assert len(await ex.feed(b, a, expect=1)) == 1
        assert len(await ex.feed(c, a, expect=1)) == 1

        # C alone suspends its agreement with A, by a signed statement: the update goes
        # to B only.
        agreement = ex.sandbox.agreements.by_id(f"{a}-{c}")
        statement = sign_statement(
            agreement,
            c,
            StatementAction.SUSPEND,
            ex.sandbox.key_ids[c],
            ex.sandbox.keys[c],
            datetime.now(UTC),
        )
        suspended = add_signed(ex.sandbox.agreements_text, [(agreement.id, statement)])
        router.view = PolicyView.build(ex.sandbox.trust, parse_agreement_set(suspended))
        await ex.publish(
            ex.seal(
                ex.alert(
                    AlertType.WANTED_PERSON, a, alert_id=alert_id, version=2, operation="UPDATE"
                )
            )
        )
        to_b = await ex.feed(b, a, expect=2)
        cancel = ex.alert(
            AlertType.WANTED_PERSON,
            a,
            alert_id=alert_id,
            version=3,
            operation="CANCEL",
            cancel_reason="arrested in Bangui",
            sections={},
        )
        await ex.publish(ex.seal(cancel))
        to_b = await ex.feed(b, a, expect=3)
        to_c = await ex.feed(c, a, expect=2)

    assert [e.header.version for e in to_b] == [1, 2, 3]
    assert [e.header.version for e in to_c] == [1, 3]  # no update, but the cancel
    assert to_c[-1].header.operation.value == "CANCEL"
    assert to_c[-1].header.cancel_reason == "arrested in Bangui"


def _signed(box: Sandbox, pairs: list[tuple[str, str]]) -> str:
    """``open_agreements(pairs)`` signed by both parties of each, with the sandbox's keys."""
    start = min(key.valid_from for p in box.trust.participants.values() for key in p.keys)
    return sign_agreements(open_agreements(pairs), box.keys, box.key_ids, start)


async def test_a_participant_added_to_the_trust_store_is_routed_without_a_restart(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ids = random_ids(3)
    a, b, c = ids
    full = make_sandbox(ids, open_agreements([(a, b), (a, c)]))
    before = replace(
        full.trust,
        participants=MappingProxyType({p: full.trust.participants[p] for p in (a, b)}),
    )
    trust_file, agreements_file = tmp_path / "trust.yaml", tmp_path / "agreements.yaml"
    trust_file.write_text(trust_store_yaml(before))
    agreements_file.write_text(_signed(full, [(a, b)]))
    await create_topics(kafka.admin, [a, b])
    source = AgreementSource(agreements_file, before.participants, tmp_path / "history")
    ex = Exchange(kafka, replace(full, trust=before, agreements=source.load()), ids)
    router = ex.router(topic_refresh=0.5)
    router.sources = (PolicySource(trust_file, source, before),)

    def routes(*origins: str) -> bool:
        assigned = {tp.topic for tp in router.workers}
        return all(naming.outbox_topic(o) in assigned for o in origins)

    async with running(router):
        await eventually(lambda: routes(a, b), what="the router routes a's and b's outboxes")
        # Onboarding: its topics are provisioned, then the trust store and agreements change.
        await create_topics(kafka.admin, ids)
        trust_file.write_text(trust_store_yaml(full.trust))
        agreements_file.write_text(_signed(full, [(a, b), (a, c)]))
        ex.sandbox = full
        envelope = ex.seal(ex.alert(AlertType.BORDER_INCIDENT, c))
        await eventually(
            lambda: c in router.view.trust.participants and routes(c),
            what="the router trusts c and routes its outbox",
        )
        await ex.publish(envelope)
        delivered = await ex.feed(a, c, expect=1)

    assert [e.header.message_id for e in delivered] == [envelope.header.message_id]


async def test_a_backlog_larger_than_a_record_batch_keeps_every_alerts_versions_in_order(
    kafka: KafkaCluster,
) -> None:
    # Published before the router starts, the backlog is routed in a few large
    # transactions whose copies for one feed partition fill several record batches.
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]))
    a, b = ex.ids
    versions = 400
    backlog: list[Envelope] = []
    alert_ids = []
    for _ in range(2):
        create = ex.alert(AlertType.WANTED_PERSON, a)
        assert create.alert_id is not None
        alert_ids.append(create.alert_id)
        backlog.append(ex.seal(create))
        backlog += [
            ex.seal(
                ex.alert(
                    AlertType.WANTED_PERSON,
                    a,
                    alert_id=create.alert_id,
                    version=version,
                    operation="UPDATE",
                )
            )
            for version in range(2, versions + 1)
        ]
    await ex.publish(*backlog)
    async with running(ex.router()):
        delivered = await ex.feed(b, a, expect=len(backlog))

    assert sum(len(encode_envelope(e)) for e in backlog) > 2 * 512 * 1024
    assert len(delivered) == len(backlog)
    for alert_id in alert_ids:
        copies = [e for e in delivered if e.header.alert_id == alert_id]
        assert [e.header.version for e in copies] == list(range(1, versions + 1))


async def _committed(ex: Exchange, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of each partition of ``topic`` (0: none)."""
    consumer = AIOKafkaConsumer(
        **ex.settings.client_kwargs(), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(3)}
    finally:
        await consumer.stop()


async def test_routing_resumes_where_the_audit_chain_ends_whatever_the_groups_offset(
    kafka: KafkaCluster,
) -> None:
    # The audit records carry every routed offset and commit with the copies, so the
    # chain, not the consumer group's offset (committed once per interval), says where
    # routing resumes. A router of a new group (the old group's offsets lost) must
    # route only what the chain has not decided yet.
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]))
    a, b = ex.ids
    outbox = naming.outbox_topic(a)
    first = [ex.seal(ex.alert(AlertType.WANTED_PERSON, a)) for _ in range(24)]
    await ex.publish(*first)
    async with running(ex.router(offset_commit_interval=3600.0)):
        assert len(await ex.feed(b, a, expect=len(first))) == len(first)
    # Leaving, each worker committed the group's offset it still owed.
    ends = await _end_offsets(ex, outbox)
    assert await _committed(ex, ex.group, outbox) == ends

    second = [ex.seal(ex.alert(AlertType.WANTED_PERSON, a)) for _ in range(12)]
    await ex.publish(*second)
    fresh_group = f"{ex.group}.fresh"
    async with running(ex.router(group_id=fresh_group)):
        await ex.feed(b, a, expect=len(first) + len(second))
    delivered = Counter(e.header.message_id for e in await ex.feed(b, a))
    assert delivered == Counter(e.header.message_id for e in first + second)
    # Not even read again: a record routed twice would be quarantined as a replay.
    quarantined = [
        record
        for _, record in map(decode_record, await ex.read(naming.QUARANTINE_TOPIC))
        if record["source_topic"] == outbox
    ]
    assert quarantined == []
    assert await _committed(ex, fresh_group, outbox) == await _end_offsets(ex, outbox)


async def _end_offsets(ex: Exchange, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**ex.settings.client_kwargs(), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def test_a_failed_transaction_is_routed_again_from_the_audit_chain_once(
    kafka: KafkaCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Kafka error inside a transaction aborts it: the worker rebuilds its memory
    # from the audit chain and resumes where the chain ends. The aborted batch is
    # routed again, once; nothing else is, and nothing is taken for a replay.
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]))
    a, b = ex.ids
    outbox = naming.outbox_topic(a)
    send = PartitionWorker._send
    batches: Counter[int | None] = Counter()
    failed: list[int | None] = []

    async def failing_once(producer: Any, outputs: Sequence[Any]) -> Any:
        # The second batch of the first partition to have two (its first one committed).
        # A batch's audit records go to the audit partition of its outbox partition.
        partitions = {o.partition for o in outputs if o.topic == naming.audit_topic(a)}
        batches.update(partitions)
        second = [p for p in partitions if batches[p] == 2]
        if not failed and second:
            failed.extend(second)
            raise KafkaConnectionError("injected: the broker went away mid-transaction")
        return await send(producer, outputs)

    monkeypatch.setattr(PartitionWorker, "_send", staticmethod(failing_once))
    envelopes = [ex.seal(ex.alert(AlertType.WANTED_PERSON, a)) for _ in range(30)]
    # The group's offset is not committed meanwhile (a checkpoint's transaction would
    # carry it): only the chain says where to resume.
    async with running(ex.router(offset_commit_interval=3600.0, checkpoint_interval=3600.0)):
        await ex.publish(envelopes[0])
        await ex.feed(b, a, expect=1)  # the router is up: what follows comes in small batches
        for envelope in envelopes[1:]:  # one at a time, a few a second
            await ex.publish(envelope)
        await ex.feed(b, a, expect=len(envelopes))

    assert failed, "no transaction failed"
    delivered = Counter(e.header.message_id for e in await ex.feed(b, a))
    assert delivered == Counter(e.header.message_id for e in envelopes)
    decided = Counter(
        record["message_id"]
        for _, record in map(decode_record, await ex.read(naming.audit_topic(a)))
        if record["kind"] != "CHECKPOINT"
    )
    assert decided == delivered
    quarantined = [
        record
        for _, record in map(decode_record, await ex.read(naming.QUARANTINE_TOPIC))
        if record["source_topic"] == outbox
    ]
    assert quarantined == []
