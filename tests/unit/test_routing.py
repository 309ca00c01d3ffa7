"""The router's per-record function and memory, and how a transaction's outputs are written."""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference
from nacl.signing import SigningKey

from border_exchange.demo.sandbox import Sandbox, make_sandbox, open_agreements
from border_exchange.domain import naming
from border_exchange.domain.alerts import AlertInput
from border_exchange.domain.audit import (
    AuditKind,
    ChainHead,
    checkpoint_record,
    decision_record,
    encode_audit,
    outcome_entries,
    quarantine_audit_record,
)
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record, encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.memo import PerObject
from border_exchange.domain.partitioning import expected_partition, key_hash, murmur2
from border_exchange.domain.policy import Outcome, PolicyIndex
from border_exchange.domain.routing import (
    Inbound,
    PartitionState,
    QuarantineReason,
    Refused,
    Routed,
    RoutingRules,
    Signed,
    check_unsigned,
    replay_audit,
    route,
    route_signed,
    signature_verifies,
)
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal, verify_trusted
from border_exchange.services.router import (
    PartitionWorker,
    _OutcomeSummary,
    _Output,
)
from tests import clock

NOW = clock.now()
AGREEMENTS = """
version: "unit"
agreements:
  - id: CAF-COD
    parties: [CAF, COD]
    status: active
    effective_from: SINCE
    flows:
      - from: CAF
        to: COD
        types:
          WANTED_PERSON: {sections: [identity, offence, contact], max_handling: H3}
""".replace("SINCE", clock.iso(clock.days(-30)))


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return make_sandbox(["CAF", "COD", "SSD"], AGREEMENTS)


def _alert(box: Sandbox, **changes: Any) -> AlertInput:
    base = sample_alert(AlertType.WANTED_PERSON, origin="CAF", alert_id=uuid.uuid4().hex)
    values = {"expires_at": NOW + timedelta(days=30), **changes}
    return type(base).model_validate({**base.model_dump(), **values})


def _seal(box: Sandbox, alert: AlertInput, issued_at: datetime = NOW, **kw: Any) -> Envelope:
    return seal(
        alert,
        signing_key=kw.get("key", box.keys[alert.origin]),
        key_id=kw.get("key_id", box.key_ids[alert.origin]),
        message_id=uuid.uuid4().hex,
        issued_at=issued_at,
    )


def _route(
    box: Sandbox,
    envelope: Envelope | None,
    state: PartitionState,
    *,
    topic: str = "bx.CAF.outbox",
    key: bytes | None = None,
    value: bytes | None = None,
    partition: int = 0,
) -> Routed | Refused:
    if envelope is not None:
        key = key if key is not None else envelope.header.alert_id.encode()
        value = encode_envelope(envelope)
    return route(
        Inbound(topic, partition, 7, key, value),
        expected_partition=0,
        trust=box.trust,
        policy=PolicyIndex.build(box.agreements, box.trust.participants),
        now=NOW,
        rules=RoutingRules(),
        state=state,
    )


def _reason(result: Routed | Refused) -> QuarantineReason:
    assert isinstance(result, Refused), result
    return result.reason


def test_a_permitted_partner_gets_only_its_sections_and_the_copy_verifies(box: Sandbox) -> None:
    envelope = _seal(box, _alert(box))
    result = _route(box, envelope, PartitionState())
    assert isinstance(result, Routed)
    assert [name for name, _ in result.copies] == ["COD"]
    copy = result.copies[0][1]
    assert copy.present_sections == {"identity", "offence", "contact"}
    verify_trusted(copy, box.trust)
    assert result.decision.outcomes["SSD"].delivered is False


def test_each_refusal_names_its_reason(box: Sandbox) -> None:
    good = _seal(box, _alert(box))
    stranger = SigningKey.generate()
    cases = {
        QuarantineReason.MALFORMED: _route(box, None, PartitionState(), key=b"k", value=b"junk"),
        QuarantineReason.KEY_MISMATCH: _route(box, good, PartitionState(), key=b"other"),
        QuarantineReason.ORIGIN_MISMATCH: _route(
            box, good, PartitionState(), topic="bx.SSD.outbox"
        ),
        QuarantineReason.UNKNOWN_KEY: _route(
            box, _seal(box, _alert(box), key=stranger, key_id="CAF-x"), PartitionState()
        ),
        QuarantineReason.BAD_SIGNATURE: _route(
            box, replace(good, signature=bytes(64)), PartitionState()
        ),
        QuarantineReason.EXPIRED: _route(
            box,
            _seal(box, _alert(box, expires_at=NOW - timedelta(hours=1)), NOW - timedelta(days=1)),
            PartitionState(),
        ),
        QuarantineReason.FUTURE_DATED: _route(
            box, _seal(box, _alert(box), NOW + timedelta(minutes=6)), PartitionState()
        ),
    }
    for reason, result in cases.items():
        assert _reason(result) is reason


def test_a_record_on_the_wrong_partition_is_refused(box: Sandbox) -> None:
    envelope = _seal(box, _alert(box))
    assert _reason(_route(box, envelope, PartitionState(), partition=1)) is (
        QuarantineReason.WRONG_PARTITION
    )


def test_a_replay_a_stale_version_and_anything_after_a_cancel_are_refused(box: Sandbox) -> None:
    state = PartitionState()
    first = _seal(box, _alert(box))
    routed = _route(box, first, state)
    assert isinstance(routed, Routed)
    state.apply_routed(first.header, routed.decision.recipients)
    assert _reason(_route(box, first, state)) is QuarantineReason.REPLAYED

    alert_id = first.header.alert_id
    again = _seal(box, _alert(box, alert_id=alert_id, version=1))  # a new message, old version
    assert _reason(_route(box, again, state)) is QuarantineReason.STALE_VERSION

    cancel = _seal(
        box,
        _alert(
            box, alert_id=alert_id, version=3, operation="CANCEL", cancel_reason="x", sections={}
        ),
    )
    routed = _route(box, cancel, state)
    assert isinstance(routed, Routed)
    assert routed.decision.recipients == ("COD",)  # every earlier recipient
    state.apply_routed(cancel.header, routed.decision.recipients)
    later = _seal(box, _alert(box, alert_id=alert_id, version=4, operation="UPDATE"))
    assert _reason(_route(box, later, state)) is QuarantineReason.ALERT_CANCELLED


def test_the_memory_rebuilt_from_the_audit_chain_equals_the_live_one() -> None:
    box = make_sandbox(["CAF", "COD", "SSD"], open_agreements([("CAF", "COD"), ("CAF", "SSD")]))
    live = PartitionState()
    head = ChainHead(naming.outbox_topic("CAF") + "/0")
    chain: list[bytes] = []
    alert_id = uuid.uuid4().hex
    messages = [
        _seal(box, _alert(box, alert_id=alert_id)),
        _seal(box, _alert(box, alert_id=alert_id, version=2, operation="UPDATE")),
        _seal(box, _alert(box)),
    ]
    messages.append(messages[0])  # a replay, quarantined
    # Offsets with gaps, as transaction markers leave in an outbox.
    for offset, envelope in zip((40, 42, 43, 47), messages, strict=True):
        result = _route(box, envelope, live)
        if isinstance(result, Routed):
            record = decision_record(
                head, NOW, offset, envelope.header, envelope.present_sections,
                result.decision, result.earlier_recipients,
            )  # fmt: skip
            live.apply_routed(envelope.header, result.decision.recipients)
            kind = AuditKind.DECISION
        else:
            record = quarantine_audit_record(
                head, NOW, offset, result.reason.value, result.detail, result.header
            )
            live.apply_refused(result.header, result.reason.value)
            kind = AuditKind.QUARANTINE
        data = encode_audit(record)
        chain.append(data)
        head = head.after(data, kind)

    # A signed checkpoint decides no record: routing resumes after the last decision.
    chain.append(encode_audit(checkpoint_record(head, NOW, "hub-1", bytes(64))))

    rebuilt = PartitionState()
    for data in chain:
        replay_audit(rebuilt, decode_record(data)[1])
    assert rebuilt.alerts == live.alerts
    assert rebuilt.seen == live.seen
    assert rebuilt.next_offset == 48
    assert live.alerts[alert_id].recipients == {"COD", "SSD"}
    assert live.alerts[alert_id].last_version == 2


def test_expired_message_ids_are_forgotten() -> None:
    state = PartitionState(seen={"old": NOW - timedelta(days=1), "new": NOW + timedelta(days=1)})
    assert state.prune(NOW, RoutingRules()) == 1
    assert set(state.seen) == {"new"}


def test_histories_outlive_their_alerts_expiry_so_a_late_cancel_reaches_every_recipient(
    box: Sandbox,
) -> None:
    state = PartitionState()
    first = _seal(box, _alert(box, expires_at=NOW + timedelta(hours=1)))
    routed = _route(box, first, state)
    assert isinstance(routed, Routed)
    state.apply_routed(first.header, routed.decision.recipients)
    # Long after the first version expired, its id is forgotten; the history is not.
    later = NOW + timedelta(days=10)
    state.prune(later, RoutingRules())
    assert first.header.message_id not in state.seen
    assert state.alerts[first.header.alert_id].recipients == {"COD"}

    cancel = _seal(
        box,
        _alert(
            box,
            alert_id=first.header.alert_id,
            version=2,
            operation="CANCEL",
            cancel_reason="x",
            sections={},
            expires_at=later + timedelta(days=30),
        ),
    )
    routed = _route(box, cancel, state)
    assert isinstance(routed, Routed)
    assert routed.decision.recipients == ("COD",)
    assert routed.earlier_recipients == {"COD"}


def test_equal_histories_and_expiry_times_are_kept_once(box: Sandbox) -> None:
    state = PartitionState()
    envelopes = [_seal(box, _alert(box)) for _ in range(3)]
    for envelope in envelopes:
        routed = _route(box, envelope, state)
        assert isinstance(routed, Routed)
        state.apply_routed(envelope.header, routed.decision.recipients)
    histories = {id(state.alerts[e.header.alert_id]) for e in envelopes}
    expiries = {id(state.seen[e.header.message_id]) for e in envelopes}
    assert len(histories) == 1
    assert len(expiries) == 1
    assert state.alerts[envelopes[0].header.alert_id].recipients == {"COD"}


def test_recipients_permitted_every_section_share_the_origins_envelope() -> None:
    box = make_sandbox(["CAF", "COD", "SSD"], open_agreements([("CAF", "COD"), ("CAF", "SSD")]))
    envelope = _seal(box, _alert(box))
    result = _route(box, envelope, PartitionState())
    assert isinstance(result, Routed)
    assert [name for name, _ in result.copies] == ["COD", "SSD"]
    assert all(copy is result.envelope for _, copy in result.copies)


class _Bytes(bytes):
    """A bytes subclass, which the compiled hash declines."""


def test_the_key_hash_is_kafkas_murmur2() -> None:
    rng = random.Random(7)
    partitions = list(range(7))
    for length in [*range(40), 255, 1000]:
        for _ in range(20):
            data = rng.randbytes(length)
            assert murmur2(data) == reference(data) & 0xFFFFFFFF
            # The compiled hash the router partitions by gives the same, and so the
            # same partition as Kafka's default partitioner.
            assert key_hash(data) == reference(data) & 0x7FFFFFFF
            assert expected_partition(data, 7) == (reference(data) & 0x7FFFFFFF) % 7
            # The Python path (without the compiled module, or for a bytes subclass)
            # picks the partition aiokafka's own partitioner picks.
            python = key_hash(_Bytes(data))
            assert python == murmur2(data) & 0x7FFFFFFF
            assert partitions[python % 7] == DefaultPartitioner()(data, partitions, [])


def test_a_record_without_a_key_has_no_expected_partition() -> None:
    assert key_hash(None) is None
    assert expected_partition(None, 3) is None


class _Batch:
    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes | None, bytes]] = []

    def append(
        self, *, key: bytes | None, value: bytes, timestamp: None, headers: object
    ) -> object | None:
        if self.records and len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()


class _Producer:
    """What ``PartitionWorker._send`` uses of a producer, recording what it is given."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.sent: list[tuple[str, int | None, list[tuple[bytes | None, bytes]]]] = []

    def create_batch(self) -> _Batch:
        return _Batch(self.room)

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> None:
        self.sent.append((topic, partition, batch.records))

    async def send(self, topic: str, value: bytes, *, key: bytes | None, headers: object) -> None:
        self.sent.append((topic, None, [(key, value)]))


async def test_outputs_go_as_batches_per_partition_in_their_order() -> None:
    outputs = [
        _Output("feed", f"v{i}".encode(), b"k", i % 2, [("bx-source", b"s")]) for i in range(7)
    ]
    outputs.insert(3, _Output("quarantine", b"q", b"k"))  # no partition: the producer chooses
    producer = _Producer(room=2)
    await PartitionWorker._send(producer, outputs)

    for partition in (0, 1):
        batches = [records for t, p, records in producer.sent if (t, p) == ("feed", partition)]
        assert all(len(records) <= 2 for records in batches)  # a full batch starts a new one
        values = [value for records in batches for _, value in records]
        assert values == [f"v{i}".encode() for i in range(7) if i % 2 == partition]
    assert ("quarantine", None, [(b"k", b"q")]) in producer.sent


def test_signatures_checked_apart_give_the_same_answers_as_route(box: Sandbox) -> None:
    good = _seal(box, _alert(box))
    tampered = replace(good, signature=bytes([good.signature[0] ^ 1]) + good.signature[1:])
    trust = box.trust
    for envelope, expected in ((good, True), (tampered, False)):
        inbound = Inbound("bx.CAF.outbox", 0, 7, envelope.header.alert_id.encode(),
                          encode_envelope(envelope))  # fmt: skip
        checked = check_unsigned(inbound, expected_partition=0, trust=trust)
        assert isinstance(checked, Signed)
        assert signature_verifies(checked) is expected
        state = PartitionState()
        result = route_signed(
            checked,
            expected,
            policy=PolicyIndex.build(box.agreements, trust.participants),
            now=NOW,
            rules=RoutingRules(),
            state=state,
        )
        alone = _route(box, envelope, PartitionState())
        assert type(result) is type(alone)
        if isinstance(result, Refused):
            assert isinstance(alone, Refused)
            assert (result.reason, result.detail) == (alone.reason, alone.detail)
            assert result.reason is QuarantineReason.BAD_SIGNATURE


def _summaries(limit: int = 256) -> PerObject[Mapping[str, Outcome], _OutcomeSummary]:
    """The outcome summaries of messages from CAF, as a worker of CAF's outbox keeps them."""
    return PerObject(functools.partial(_OutcomeSummary.of, origin="CAF"), limit)


def test_decisions_sharing_their_outcomes_share_one_summary_and_others_get_their_own(
    box: Sandbox,
) -> None:
    state = PartitionState()
    summaries = _summaries()
    first = _route(box, _seal(box, _alert(box)), state)
    second = _route(box, _seal(box, _alert(box)), state)
    assert isinstance(first, Routed)
    assert isinstance(second, Routed)
    summary = summaries(first.decision.outcomes)
    assert summaries(first.decision.outcomes) is summary  # built once per mapping
    assert summaries(second.decision.outcomes) == summary  # an equal mapping
    assert _OutcomeSummary.of(first.decision.outcomes, "COD") != summary  # counted for its origin
    assert summary.entries == outcome_entries(first.decision.outcomes)
    assert summary.recipients == first.decision.recipients

    # A cancel's outcomes are its own mapping, with other recipients and entries.
    state.apply_routed(first.envelope.header, summary.recipients)
    alert_id = first.envelope.header.alert_id
    cancel = _route(
        box,
        _seal(
            box,
            _alert(
                box,
                alert_id=alert_id,
                version=3,
                operation="CANCEL",
                cancel_reason="x",
                sections={},
            ),
        ),
        state,
    )
    assert isinstance(cancel, Routed)
    own = summaries(cancel.decision.outcomes)
    assert own is not summary
    assert own.entries == outcome_entries(cancel.decision.outcomes) != summary.entries
    assert own.recipients == cancel.decision.recipients
    # The counts: one per copy delivered, one per participant denied, never the origin.
    delivered = [key for key in own.counted if key[0] == "delivered_total"]
    assert [key[2] for key in delivered] == list(own.recipients)
    assert len(own.counted) == len(cancel.decision.outcomes) - 1


def test_a_full_summary_memo_starts_again_and_still_answers_right(box: Sandbox) -> None:
    summaries = _summaries(limit=1)
    result = _route(box, _seal(box, _alert(box)), PartitionState())
    assert isinstance(result, Routed)
    outcomes = result.decision.outcomes
    other = MappingProxyType(dict(outcomes))
    assert summaries(outcomes).entries == outcome_entries(outcomes)
    assert summaries(other).entries == outcome_entries(other)
    assert summaries(outcomes).recipients == result.decision.recipients


def test_pruning_forgets_what_expired_before_the_horizon_and_nothing_else() -> None:
    rules = RoutingRules()
    horizon = NOW - rules.max_clock_skew
    state = PartitionState()
    # Around the horizon, in its hour and the hours either side; ids in any order.
    offsets = [-7200, -3601, -1, 0, 1, 3599, 7200, -30, 30]
    for n, seconds in enumerate(offsets):
        state.remember_refused(f"m{n}", horizon + timedelta(seconds=seconds))
    assert state.prune(NOW, rules) == 4
    assert set(state.seen) == {f"m{n}" for n, s in enumerate(offsets) if s >= 0}
    # What was kept is pruned later, once its time has come, and only once.
    later = NOW + timedelta(seconds=3600)
    assert state.prune(later, rules) == 4
    assert set(state.seen) == {"m6"}
    assert state.prune(later, rules) == 0


def test_memory_given_ids_directly_is_pruned_like_remembered_ones() -> None:
    state = PartitionState(seen={"a": NOW - timedelta(days=2), "b": NOW + timedelta(hours=2)})
    assert state.prune(NOW + timedelta(hours=1), RoutingRules()) == 1
    assert set(state.seen) == {"b"}
