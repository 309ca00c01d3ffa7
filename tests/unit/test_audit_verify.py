"""The auditor's verdict: every tamper with the audit chain or the feeds is detected and located.

``RoutedWorld`` plays the router honestly in memory with the domain functions (seal,
decide, redact, audit chain, checkpoints), offsets spaced as transaction markers space
them; each test then tampers with what an administrator could touch and replays.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import weakref
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nacl.signing import SigningKey

from border_exchange.demo.sandbox import sign_agreements
from border_exchange.domain.agreements import AgreementSet, parse_agreement_set
from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.audit import (
    AuditKind,
    ChainHead,
    chain_hash,
    checkpoint_record,
    decision_record,
    encode_audit,
    head_signing_input,
    quarantine_audit_record,
)
from border_exchange.domain.audit_chain import verify_chain
from border_exchange.domain.audit_gap import ChainStart
from border_exchange.domain.audit_splice import Splice, redacted_bytes
from border_exchange.domain.audit_values import LogRecord, Verdict, Violation, ViolationCode, Window
from border_exchange.domain.audit_verdict import Replay, disclosures
from border_exchange.domain.catalog import AlertType, HandlingCode, Operation, ParticipantKind
from border_exchange.domain.consent import consents
from border_exchange.domain.encoding import (
    decode_envelope_split,
    decode_record,
    encode_envelope,
    encode_record,
)
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.naming import audit_topic, feed_topic, outbox_topic
from border_exchange.domain.policy import Deliver, PolicyIndex, PolicyInput, decide
from border_exchange.domain.samples import sample_alert_data
from border_exchange.domain.signing import redact, seal
from border_exchange.domain.trust import Hub, Participant, PublicKey, TrustStore
from border_exchange.interpreter import HANDOFF_INTERVAL, tuned_for_replay

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
"""The routed world's own fixed calendar: its keys (``VALID``), agreements, messages and
replay windows are all dated from it, and the verifier reads no clock, so the verdicts
are the same on any day of the run."""
KEYS = {name: SigningKey(bytes([i + 1]) * 32) for i, name in enumerate(("CAF", "COD", "SSD"))}
HUB_KEY = SigningKey(bytes([9]) * 32)
VALID = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
PARTICIPANTS = ("CAF", "COD", "SSD")


def _public(owner: str, key: SigningKey) -> PublicKey:
    return PublicKey(owner, f"{owner}-2026", bytes(key.verify_key), *VALID)


TRUST = TrustStore(
    {
        name: Participant(
            name, name, ParticipantKind.NATIONAL_SERVICE, "active", (), (_public(name, key),)
        )
        for name, key in KEYS.items()
    },
    Hub(keys=(_public("hub", HUB_KEY),)),
)

AGREEMENTS = """
version: "2026-03"
agreements:
  - id: CAF-COD
    parties: [CAF, COD]
    status: {status}
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: CAF
        to: COD
        types:
          WANTED_PERSON: {{sections: [identity, offence], max_handling: H2}}
  - id: CAF-SSD
    parties: [CAF, SSD]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: CAF
        to: SSD
        types:
          WANTED_PERSON: {{sections: all, max_handling: H3}}
"""


def signed_set(text: str, signers: Mapping[str, Sequence[str]] | None = None) -> AgreementSet:
    """The set in ``text``, each agreement signed by both its parties (or by ``signers``)."""
    key_ids = {name: f"{name}-2026" for name in KEYS}
    return parse_agreement_set(sign_agreements(text, KEYS, key_ids, VALID[0], signers))


SET_V1 = signed_set(AGREEMENTS.format(status="active"))
SET_V2 = signed_set(AGREEMENTS.format(status="suspended").replace("2026-03", "2026-04"))


class RoutedWorld:
    """What an honest router leaves in Kafka after routing ``origin``'s alerts (one partition)."""

    def __init__(self, origin: str = "CAF", aset: AgreementSet = SET_V1) -> None:
        self.origin = origin
        self.aset = aset
        self.index = PolicyIndex.build(aset, PARTICIPANTS, consents(aset, TRUST))
        self.outbox: list[LogRecord] = []
        self.audit: list[LogRecord] = []
        self.feeds: dict[str, list[LogRecord]] = defaultdict(list)
        self.quarantine: list[LogRecord] = []
        self.head = ChainHead(f"{outbox_topic(origin)}/0")
        self.history: dict[str, set[str]] = defaultdict(set)
        self.clock = T0
        self.count = 0

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    @staticmethod
    def _next_offset(logs: Sequence[LogRecord]) -> int:
        return 0 if not logs else logs[-1].offset + 2  # a commit marker after every record

    def _append_audit(self, record: dict[str, Any], at: datetime) -> None:
        data = encode_audit(record)
        self.audit.append(
            LogRecord(audit_topic(self.origin), 0, self._next_offset(self.audit), at, data)
        )
        self.head = self.head.after(data, AuditKind(record["kind"]))

    def seal(self, operation: Operation = Operation.CREATE, alert_id: str | None = None,
             version: int = 1, handling: str = "H1") -> Envelope:  # fmt: skip
        """A signed alert of this world's origin."""
        self.count += 1
        data = sample_alert_data(AlertType.WANTED_PERSON, origin=self.origin, alert_id=alert_id)
        data |= {"operation": operation.value, "version": version, "handling_code": handling}
        if operation is Operation.CANCEL:
            data |= {"sections": {}, "cancel_reason": "arrested"}
        return seal(
            parse_alert(data),
            signing_key=KEYS[self.origin],
            key_id=f"{self.origin}-2026",
            message_id=f"msg-{self.count}",
            issued_at=self.clock,
            alert_id=alert_id or f"alert-{self.count}",
            salt=lambda n: bytes(n),
        )

    def route(self, envelope: Envelope) -> None:
        """Publish ``envelope`` to the outbox and route it as the router would."""
        at = self._tick()
        source = LogRecord(
            outbox_topic(self.origin), 0, self._next_offset(self.outbox), at,
            encode_envelope(envelope), envelope.header.alert_id.encode(),
        )  # fmt: skip
        self.outbox.append(source)
        header = envelope.header
        alert = PolicyInput(
            header.origin, header.alert_type, header.handling_code, header.operation,
            header.alert_id, header.action_on_hit,
        )  # fmt: skip
        earlier = set(self.history[header.alert_id])
        decision = decide(alert, at, self.index, earlier)
        self._append_audit(
            decision_record(
                self.head, at, source.offset, header, envelope.present_sections, decision, earlier
            ),
            at,
        )
        for recipient, outcome in decision.outcomes.items():
            if not isinstance(outcome, Deliver):
                continue
            topic = feed_topic(recipient, self.origin)
            copy = redact(envelope, outcome.sections)
            logs = self.feeds[topic]
            hint = f"{source.topic}/0/{source.offset}".encode()
            logs.append(
                LogRecord(topic, 0, self._next_offset(logs), at, encode_envelope(copy),
                          headers=(("bx-source", hint),))
            )  # fmt: skip
            self.history[header.alert_id].add(recipient)

    def refuse(self, value: bytes, reason: str = "MALFORMED") -> None:
        """Publish ``value`` to the outbox and quarantine it."""
        at = self._tick()
        offset = self._next_offset(self.outbox)
        self.outbox.append(LogRecord(outbox_topic(self.origin), 0, offset, at, value))
        self._append_audit(
            quarantine_audit_record(self.head, at, offset, reason, "not an envelope", None), at
        )
        record = {
            "source_topic": outbox_topic(self.origin), "source_partition": 0,
            "source_offset": offset, "reason": reason, "detail": "not an envelope",
            "quarantined_at": at, "original_value": value,
        }  # fmt: skip
        self.quarantine.append(
            LogRecord("bx.hub.quarantine", 0, self._next_offset(self.quarantine), at,
                      encode_record("bx.QuarantineRecord", record))
        )  # fmt: skip

    def checkpoint(self) -> None:
        """Append a checkpoint signed by the hub key."""
        at = self._tick()
        message = head_signing_input(self.head.chain, self.head.seq, self.head.head)
        signature = HUB_KEY.sign(message).signature
        self._append_audit(checkpoint_record(self.head, at, "hub-2026", signature), at)

    def replay(
        self,
        *,
        audit: Sequence[LogRecord] | None = None,
        sets: Sequence[AgreementSet] = (SET_V1,),
        window: Window | None = None,
    ) -> Verdict:
        """The auditor's verdict over everything this world holds."""
        replay = Replay(
            window or Window(T0, T0 + timedelta(days=1)),
            TRUST,
            {aset.digest: aset for aset in sets},
        )
        replay.add_chain(audit_topic(self.origin), 0, self.audit if audit is None else audit)
        replay.add_outbox(outbox_topic(self.origin), 0, self.outbox)
        for logs in self.feeds.values():
            replay.add_feed(logs)
        replay.add_quarantine(self.quarantine)
        return replay.verdict()


def routed_world(messages: int = 6) -> RoutedWorld:
    """``messages`` routed alerts, then an update, a quarantine, a cancel and two checkpoints."""
    world = RoutedWorld()
    for _ in range(messages):
        world.route(world.seal())
    world.checkpoint()
    world.route(world.seal(Operation.UPDATE, alert_id="alert-1", version=2))
    world.refuse(b"not avro at all")
    world.route(world.seal(Operation.CANCEL, alert_id="alert-2", version=2))
    world.checkpoint()
    return world


def codes(verdict: Verdict) -> list[tuple[ViolationCode, int]]:
    return [(v.code, v.offset) for v in verdict.violations]


def only(verdict: Verdict) -> Violation:
    assert len(verdict.violations) == 1, verdict.violations
    return verdict.violations[0]


def with_value(log: LogRecord, value: bytes) -> LogRecord:
    return dataclasses.replace(log, value=value)


def reencoded(log: LogRecord, **changes: Any) -> LogRecord:
    _, record = decode_record(log.value)
    return with_value(log, encode_audit(record | changes))


# --- an honest router passes ----------------------------------------------------------------


def test_an_honest_routing_verifies_clean_with_counts() -> None:
    verdict = routed_world().replay()

    assert verdict.clean, verdict.violations
    stats = verdict.stats
    assert stats.decisions == 8
    assert stats.quarantined == 1
    assert stats.checkpoints == 2
    assert stats.delivered[("CAF", "COD")]["WANTED_PERSON"] == 8
    assert stats.quarantine_reasons["CAF"] == {"MALFORMED": 1}
    assert stats.signatures_verified == 8  # once per message; the 16 feed copies are compared
    assert stats.copies_checked == 16
    assert verdict.chains[0].from_genesis


def test_the_permitted_copy_is_spliced_byte_for_byte_as_the_router_encodes_it() -> None:
    envelope = RoutedWorld().seal()
    value = encode_envelope(envelope)
    decoded, sections_at = decode_envelope_split(value)
    assert sections_at is not None
    assert (
        value[:sections_at]
        == encode_envelope(dataclasses.replace(envelope, sections=()))[:sections_at]
    )
    for keep in ({"identity", "offence"}, {"contact"}, set(), set(envelope.section_names)):
        routed = encode_envelope(redact(envelope, keep))
        assert redacted_bytes(value, decoded, keep) == routed  # header bytes found from the end
        assert Splice.of(value, decoded, sections_at).redacted(keep) == routed


# --- the audit chain ------------------------------------------------------------------------


def test_a_deleted_audit_record_is_located_at_the_record_after_the_gap() -> None:
    world = routed_world()
    audit = world.audit[:3] + world.audit[4:]

    chain = verify_chain(audit_topic("CAF"), 0, audit, TRUST)

    (violation,) = chain.violations
    assert violation.code is ViolationCode.AUDIT_DELETED
    assert violation.offset == world.audit[4].offset
    assert "deleted: seq 3 missing" in violation.detail
    # and the replay says which outbox record lost its audit
    assert (ViolationCode.MISSING_AUDIT, world.outbox[3].offset) in codes(world.replay(audit=audit))


def test_audit_records_deleted_at_the_chain_start_are_located_where_the_log_now_begins() -> None:
    world = routed_world()
    kept = world.audit[3:]  # as deleteRecords leaves it: the log starts at the 4th record
    start = ChainStart(f"{outbox_topic('CAF')}/0", kept[0].offset, 3)

    chain = verify_chain(audit_topic("CAF"), 0, kept, TRUST, start)

    (violation,) = chain.violations
    assert (violation.code, violation.topic, violation.partition, violation.offset) == (
        ViolationCode.AUDIT_DELETED, audit_topic("CAF"), 0, kept[0].offset,
    )  # fmt: skip
    assert f"before offset {kept[0].offset}" in violation.detail
    assert "seq 0-2 are gone" in violation.detail
    # Without where the log begins, a chain read from seq 3 is only a later window.
    assert verify_chain(audit_topic("CAF"), 0, kept, TRUST).violations == ()
    assert (
        verify_chain(
            audit_topic("CAF"), 0, world.audit, TRUST, ChainStart(start.chain, 0, 0)
        ).violations
        == ()
    )


def test_a_chain_whose_every_record_was_deleted_is_reported() -> None:
    start = ChainStart(f"{outbox_topic('CAF')}/0", 40, None)

    (violation,) = verify_chain(audit_topic("CAF"), 0, [], TRUST, start).violations

    assert (violation.code, violation.offset) == (ViolationCode.AUDIT_DELETED, 40)
    assert "no record is left" in violation.detail


def test_an_inserted_audit_record_is_located() -> None:
    world = routed_world()
    forged = reencoded(world.audit[2], message_id="msg-forged")
    audit = [*world.audit[:3], dataclasses.replace(forged, offset=5), *world.audit[3:]]

    chain = verify_chain(audit_topic("CAF"), 0, audit, TRUST)

    (violation,) = chain.violations
    assert violation.code is ViolationCode.CHAIN_BROKEN
    assert violation.offset == 5
    assert violation.detail.startswith("inserted")


def test_an_inserted_record_that_links_to_its_predecessor_is_located_all_the_same() -> None:
    world = routed_world()
    head = world.audit[2]
    forged = reencoded(world.audit[3], prev_hash=chain_hash(head.value), message_id="msg-forged")
    audit = [*world.audit[:3], dataclasses.replace(forged, offset=5), *world.audit[3:]]

    (violation,) = verify_chain(audit_topic("CAF"), 0, audit, TRUST).violations

    assert (violation.code, violation.offset) == (ViolationCode.CHAIN_BROKEN, 5)
    assert violation.detail.startswith("inserted")


def test_reordered_audit_records_are_located() -> None:
    world = routed_world()
    a, b = world.audit[2], world.audit[3]
    audit = [
        *world.audit[:2],
        dataclasses.replace(b, offset=a.offset),
        dataclasses.replace(a, offset=b.offset),
        *world.audit[4:],
    ]

    (violation,) = verify_chain(audit_topic("CAF"), 0, audit, TRUST).violations

    assert (violation.code, violation.offset) == (ViolationCode.CHAIN_BROKEN, a.offset)
    assert violation.detail.startswith("reordered: seq 2")


def test_an_altered_audit_record_is_located() -> None:
    world = routed_world()
    audit = list(world.audit)
    audit[1] = reencoded(audit[1], earlier_recipients=["SSD"])

    (violation,) = verify_chain(audit_topic("CAF"), 0, audit, TRUST).violations

    assert (violation.code, violation.offset) == (ViolationCode.CHAIN_BROKEN, audit[1].offset)
    assert violation.detail.startswith("altered: seq 1")


def test_an_altered_last_record_is_caught_by_the_checkpoint_after_it() -> None:
    world = routed_world()
    audit = list(world.audit)
    last = len(audit) - 1  # the final checkpoint; alter the record it covers
    audit[last - 1] = reencoded(audit[last - 1], agreement_label="edited")

    violations = verify_chain(audit_topic("CAF"), 0, audit, TRUST).violations

    assert [(v.code, v.offset) for v in violations] == [
        (ViolationCode.CHAIN_BROKEN, audit[last - 1].offset)
    ]


def test_a_checkpoint_with_a_forged_signature_is_located() -> None:
    world = routed_world()
    audit = list(world.audit)
    position = next(i for i, log in enumerate(audit) if b"hub-2026" in log.value)
    forger = SigningKey(bytes([7]) * 32)
    _, record = decode_record(audit[position].value)
    signature = forger.sign(head_signing_input(record["chain"], record["seq"], record["prev_hash"]))
    audit[position] = reencoded(audit[position], checkpoint_signature=signature.signature)

    violations = verify_chain(audit_topic("CAF"), 0, audit, TRUST).violations

    # the forged checkpoint is located; its successor no longer links to it either
    assert [(v.code, v.offset) for v in violations] == [
        (ViolationCode.CHECKPOINT_INVALID, audit[position].offset),
        (ViolationCode.CHAIN_BROKEN, audit[position].offset),
    ]


# --- the decisions --------------------------------------------------------------------------


def test_a_decision_under_an_agreement_set_changed_since_verifies_under_its_recorded_version() -> (
    None
):
    world = routed_world()  # decided under SET_V1; CAF-COD has been suspended since (SET_V2)

    assert world.replay(sets=(SET_V1, SET_V2)).clean
    again = routed_world()
    again.aset = SET_V2
    assert again.replay(sets=(SET_V2,)).violations[0].code is ViolationCode.AGREEMENT_SET_UNKNOWN


def test_a_decision_whose_recorded_outcome_the_agreements_do_not_give_is_a_mismatch() -> None:
    world = RoutedWorld()
    world.index = PolicyIndex.build(SET_V2, PARTICIPANTS)  # decides under V2 ...
    envelope = world.seal()
    world.route(envelope)
    audit = [reencoded(world.audit[0], agreement_set=SET_V1.digest)]  # ... but names V1

    verdict = world.replay(audit=audit, sets=(SET_V1, SET_V2))

    violation = next(v for v in verdict.violations if v.code is ViolationCode.DECISION_MISMATCH)
    assert violation.offset == 0
    assert "COD: recorded deny SUSPENDED" in violation.detail


def _recording(
    world: RoutedWorld, change: Callable[[dict[str, Any]], None], envelope: Envelope | None = None
) -> None:
    """Route one message (by default a new alert) as ``world`` does, but record its decision
    changed by ``change``.

    The record is written into the chain as the router writes it, so the chain holds.
    """
    append = world._append_audit

    def changed(record: dict[str, Any], at: datetime) -> None:
        change(record)
        append(record, at)

    world._append_audit = changed  # type: ignore[method-assign]
    try:
        world.route(world.seal() if envelope is None else envelope)
    finally:
        world._append_audit = append  # type: ignore[method-assign]


def test_decisions_alike_but_for_a_recorded_outcome_are_each_re_evaluated() -> None:
    # Same origin, type, handling code, time segment and history: the re-evaluation gives
    # the same (shared) outcome mapping, and each recorded list is still compared with it.
    world = RoutedWorld()
    world.route(world.seal())

    def fewer_sections(record: dict[str, Any]) -> None:
        record["outcomes"][1]["sections"] = ["identity"]  # COD was permitted identity, offence

    def denied(record: dict[str, Any]) -> None:
        record["outcomes"][2] |= {"delivered": False, "sections": [], "reason": "SUSPENDED",
                                  "basis": None}  # fmt: skip

    _recording(world, fewer_sections)
    world.route(world.seal())
    _recording(world, denied)
    world.route(world.seal())

    verdict = world.replay()

    mismatches = [v for v in verdict.violations if v.code is ViolationCode.DECISION_MISMATCH]
    assert [v.offset for v in mismatches] == [world.audit[1].offset, world.audit[3].offset]
    assert "COD: recorded deliver [identity] under CAF-COD" in mismatches[0].detail
    assert "SSD: recorded deny SUSPENDED" in mismatches[1].detail


def test_recorded_outcomes_are_compared_per_participant_not_as_a_list() -> None:
    # A list that is not exactly the one the router writes (another order, a reason kept on
    # a delivery) is compared outcome by outcome: only the fields of its kind count.
    world = RoutedWorld()

    def reversed_order(record: dict[str, Any]) -> None:
        record["outcomes"].reverse()

    def reason_on_a_delivery(record: dict[str, Any]) -> None:
        record["outcomes"][1]["reason"] = "NO_AGREEMENT"

    _recording(world, reversed_order)
    _recording(world, reason_on_a_delivery)
    world.route(world.seal())

    assert world.replay().clean


def test_an_outcome_under_another_agreement_set_is_not_taken_for_a_shared_one() -> None:
    # The same message decided under two sets: outcome mappings of each set's index are
    # compared with the records naming that set only.
    world = RoutedWorld()
    world.route(world.seal())
    world.index = PolicyIndex.build(SET_V2, PARTICIPANTS)
    world.route(world.seal())
    _recording(world, lambda record: record.update(agreement_set=SET_V1.digest))

    verdict = world.replay(sets=(SET_V1, SET_V2))

    assert codes(verdict) == [(ViolationCode.DECISION_MISMATCH, world.audit[2].offset)]


def test_decide_reads_the_alert_as_the_replay_reuses_its_decisions() -> None:
    # The replay decides once for decisions alike in everything but the alert id and the
    # time within one segment of the agreements (``Reevaluator._outcomes``).
    index = PolicyIndex.build(SET_V2, PARTICIPANTS)
    for operation in Operation:
        for handling in HandlingCode:
            for history in (frozenset(), frozenset({"COD"}), frozenset({"COD", "SSD"})):
                first = PolicyInput("CAF", AlertType.WANTED_PERSON, handling, operation, "a-1")
                other = dataclasses.replace(first, alert_id="a-2")
                for at in (T0, T0 + timedelta(days=30)):  # one segment: no agreement starts
                    assert index.template(first, at) is index.template(first, T0)
                    assert (
                        decide(other, at, index, history).outcomes
                        == decide(first, T0, index, history).outcomes
                    )


def test_decisions_alike_but_for_their_time_segment_or_history_are_decided_apart() -> None:
    # CAF-COD ends during the period: the same alert is delivered to COD before, not after.
    ending = signed_set(
        AGREEMENTS.format(status="active").replace(
            "effective_from: 2026-01-01T00:00:00Z\n",
            "effective_from: 2026-01-01T00:00:00Z\n    effective_until: 2026-03-01T08:00:04Z\n",
            1,
        )
    )

    def routed(tampered: int | None = None, like: int = 0) -> RoutedWorld:
        world = RoutedWorld(aset=ending)
        world.index = PolicyIndex.build(ending, PARTICIPANTS)
        outcomes = [] if tampered is None else decisions[like]["outcomes"]
        for position, (operation, alert_id) in enumerate(
            [(Operation.CREATE, "alert-1"), (Operation.CANCEL, "alert-1"),
             (Operation.CANCEL, "alert-9"), (Operation.CREATE, "alert-4")]
        ):  # fmt: skip
            version = 1 if operation is Operation.CREATE else 2
            envelope = world.seal(operation, alert_id=alert_id, version=version)
            if position == tampered:
                _recording(world, lambda record: record.update(outcomes=outcomes), envelope)
            else:
                world.route(envelope)
        return world

    honest = routed()
    assert honest.replay(sets=(ending,)).clean
    decisions = [decode_record(log.value)[1] for log in honest.audit]
    cod = [decision["outcomes"][1] for decision in decisions]
    assert [(o["delivered"], o["reason"]) for o in cod] == [
        (True, None),  # at 08:00:01
        (True, None),  # a cancel, to an earlier recipient
        (False, "NO_EARLIER_VERSION"),  # a cancel of an alert nobody received
        (False, "EXPIRED"),  # at 08:00:04, when CAF-COD ends
    ]

    for tampered, like in ((3, 0), (2, 1)):  # another time segment; another history
        world = routed(tampered, like)
        verdict = world.replay(sets=(ending,))
        mismatches = [v for v in verdict.violations if v.code is ViolationCode.DECISION_MISMATCH]
        assert [v.offset for v in mismatches] == [world.audit[tampered].offset]


def test_an_unknown_agreement_set_is_reported() -> None:
    verdict = routed_world().replay(sets=())

    assert {v.code for v in verdict.violations} == {ViolationCode.AGREEMENT_SET_UNKNOWN}


def test_a_missing_outbox_audit_is_reported_at_the_outbox_offset() -> None:
    world = routed_world()
    extra = world.seal()
    world.outbox.append(
        LogRecord(outbox_topic("CAF"), 0, world.outbox[-1].offset + 2, world._tick(),
                  encode_envelope(extra))
    )  # fmt: skip

    violation = only(world.replay())

    assert (violation.code, violation.topic) == (ViolationCode.MISSING_AUDIT, "bx.CAF.outbox")
    assert violation.offset == world.outbox[-1].offset


def test_a_decision_describing_another_message_is_a_mismatch() -> None:
    world = routed_world()
    audit = list(world.audit)
    audit[-1] = reencoded(audit[-1], handling_code="H0")  # the final checkpoint covers it...
    audit[0] = reencoded(audit[0], handling_code="H0")  # ...the first record is not covered

    verdict = world.replay(audit=audit)

    assert (ViolationCode.AUDIT_MISMATCH, audit[0].offset) in codes(verdict)


# --- the feeds ------------------------------------------------------------------------------


def test_a_record_written_straight_into_a_partner_feed_is_unauthorised() -> None:
    world = routed_world()
    forged = world.seal()  # a genuine CAF message the router never saw
    topic = feed_topic("COD", "CAF")
    offset = world.feeds[topic][-1].offset + 2
    world.feeds[topic].append(LogRecord(topic, 0, offset, world._tick(), encode_envelope(forged)))

    violation = only(world.replay())

    assert (violation.code, violation.topic, violation.offset) == (
        ViolationCode.FEED_UNAUTHORISED,
        topic,
        offset,
    )


def test_a_copy_of_a_denied_message_in_a_feed_is_unauthorised() -> None:
    world = RoutedWorld()
    world.route(world.seal(handling="H3"))  # above CAF-COD's limit: COD is denied
    topic = feed_topic("COD", "CAF")
    ssd_copy = world.feeds[feed_topic("SSD", "CAF")][0]
    world.feeds[topic].append(dataclasses.replace(ssd_copy, topic=topic))

    violation = only(world.replay())

    assert (violation.code, violation.topic) == (ViolationCode.FEED_UNAUTHORISED, topic)
    assert "does not deliver it to COD" in violation.detail


def test_a_delivery_without_its_feed_record_is_missing() -> None:
    world = routed_world()
    topic = feed_topic("SSD", "CAF")
    dropped = world.feeds[topic].pop(2)

    violation = only(world.replay())

    assert violation.code is ViolationCode.FEED_MISSING
    assert (violation.topic, violation.offset) == ("bx.hub.audit.CAF", world.audit[2].offset)
    assert dropped.topic in violation.detail


def test_a_feed_copy_with_more_sections_than_permitted_is_reported() -> None:
    world = RoutedWorld()
    envelope = world.seal()
    world.route(envelope)
    topic = feed_topic("COD", "CAF")
    world.feeds[topic][0] = with_value(world.feeds[topic][0], encode_envelope(envelope))

    violation = only(world.replay())

    assert (violation.code, violation.topic) == (ViolationCode.FEED_SECTION_DISCLOSED, topic)
    for withheld in sorted(envelope.present_sections - {"identity", "offence"}):
        assert withheld in violation.detail


def test_a_forged_copy_beside_the_permitted_one_is_a_disclosure_not_a_duplicate() -> None:
    world = RoutedWorld()
    envelope = world.seal()
    world.route(envelope)
    topic = feed_topic("COD", "CAF")
    genuine = world.feeds[topic][0]
    world.feeds[topic].append(
        dataclasses.replace(genuine, offset=genuine.offset + 2, value=encode_envelope(envelope))
    )

    violation = only(world.replay())

    assert (violation.code, violation.offset) == (
        ViolationCode.FEED_SECTION_DISCLOSED, genuine.offset + 2,
    )  # fmt: skip
    assert "photo" in violation.detail
    assert "COD" in violation.detail


def test_a_copy_with_fewer_sections_than_permitted_is_a_sections_mismatch() -> None:
    world = RoutedWorld()
    envelope = world.seal()
    world.route(envelope)
    topic = feed_topic("COD", "CAF")
    world.feeds[topic][0] = with_value(
        world.feeds[topic][0], encode_envelope(redact(envelope, {"identity"}))
    )

    violation = only(world.replay())

    assert (violation.code, violation.topic) == (ViolationCode.FEED_SECTIONS_MISMATCH, topic)


def test_a_duplicated_feed_record_is_reported() -> None:
    world = routed_world()
    topic = feed_topic("COD", "CAF")
    world.feeds[topic].append(dataclasses.replace(world.feeds[topic][0], offset=999))

    violation = only(world.replay())

    assert (violation.code, violation.offset) == (ViolationCode.FEED_DUPLICATE, 999)


def test_a_feed_copy_with_altered_content_fails_its_signature() -> None:
    world = RoutedWorld()
    envelope = world.seal()
    world.route(envelope)
    topic = feed_topic("SSD", "CAF")
    section = envelope.sections[0]
    assert section.content is not None
    altered = dataclasses.replace(
        section, content=section.content[:-1] + bytes([section.content[-1] ^ 1])
    )
    tampered = dataclasses.replace(envelope, sections=(altered, *envelope.sections[1:]))
    world.feeds[topic][0] = with_value(world.feeds[topic][0], encode_envelope(tampered))

    violation = only(world.replay())

    assert (violation.code, violation.topic) == (ViolationCode.SIGNATURE_INVALID, topic)
    assert "does not match its signed digest" in violation.detail


def test_an_outbox_copy_with_a_bad_signature_that_was_delivered_is_reported() -> None:
    world = RoutedWorld()
    envelope = world.seal()
    bad = dataclasses.replace(envelope, signature=bytes(64))
    world.route(bad)

    verdict = world.replay()

    assert (ViolationCode.SIGNATURE_INVALID, 0) in codes(verdict)
    assert all(v.code is ViolationCode.SIGNATURE_INVALID for v in verdict.violations)


# --- quarantine, history, window, disclosures -----------------------------------------------


def test_a_quarantine_audit_without_its_quarantine_record_is_reported() -> None:
    world = routed_world()
    world.quarantine.clear()

    violation = only(world.replay())

    assert violation.code is ViolationCode.QUARANTINE_MISSING


def test_earlier_recipients_are_checked_against_the_chain() -> None:
    world = RoutedWorld()
    for _ in range(3):
        world.route(world.seal())
    world.history.clear()  # a router that forgot who received alert-1 before its cancel
    world.route(world.seal(Operation.CANCEL, alert_id="alert-1", version=2))

    violation = only(world.replay())

    assert (violation.code, violation.offset) == (
        ViolationCode.HISTORY_MISMATCH,
        world.audit[-1].offset,
    )
    assert "the chain shows ['COD', 'SSD']" in violation.detail


def test_a_window_later_than_the_start_takes_history_as_recorded_and_says_so() -> None:
    world = routed_world()
    later = Window(world.audit[3].timestamp, T0 + timedelta(days=1))

    verdict = world.replay(audit=world.audit[3:], window=later)

    assert verdict.clean, verdict.violations
    assert any("taken as recorded" in note for note in verdict.notes)


def test_disclosures_list_what_each_recipient_received_and_under_which_agreement() -> None:
    world = routed_world(2)
    chain = verify_chain(audit_topic("CAF"), 0, world.audit, TRUST)

    found = disclosures(chain.entries, Window(T0, T0 + timedelta(days=1)), "CAF")

    first = [(d.message_id, d.recipient, d.sections, d.agreement_id) for d in found][:2]
    assert first == [
        ("msg-1", "COD", ("identity", "offence"), "CAF-COD"),
        ("msg-1", "SSD", ("identity", "documents", "description", "photo", "offence", "remarks",
                          "contact"), "CAF-SSD"),
    ]  # fmt: skip


def _tuned(world: RoutedWorld) -> Verdict:
    """``world`` replayed as ``audit replay`` runs it: with the interpreter tuned for it."""
    with tuned_for_replay():
        return world.replay()


def test_a_tuned_replay_runs_with_the_collector_paused_and_prompt_gil_handoffs() -> None:
    assert gc.isenabled()
    assert sys.getswitchinterval() > HANDOFF_INTERVAL  # Python's default, 5 ms
    with tuned_for_replay():
        collecting, interval = gc.isenabled(), sys.getswitchinterval()
    assert not collecting
    assert interval == pytest.approx(HANDOFF_INTERVAL, rel=0.01)


def test_a_tuned_replay_leaves_the_switch_interval_as_it_found_it() -> None:
    world = routed_world()
    was = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.002)
        assert _tuned(world).clean
        assert sys.getswitchinterval() == pytest.approx(0.002, rel=0.01)
        sys.setswitchinterval(0.0001)  # a shorter one is kept as it is
        assert _tuned(world).clean
        assert sys.getswitchinterval() == pytest.approx(0.0001, rel=0.01)
    finally:
        sys.setswitchinterval(was)


class _Node:
    link: object = None


def test_a_tuned_replay_freezes_nothing_and_leaves_cycles_collectable() -> None:
    world = routed_world()
    node = _Node()
    node.link = node  # cyclic garbage made before the replay
    alive = weakref.ref(node)
    del node

    assert _tuned(world).clean

    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


def test_a_tuned_replay_leaves_what_its_caller_froze_frozen() -> None:
    world = routed_world()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert _tuned(world).clean
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_tuned_replay_leaves_the_cycle_collector_as_it_found_it() -> None:
    world = routed_world()
    assert gc.isenabled()
    assert _tuned(world).clean
    assert gc.isenabled()
    gc.disable()
    try:
        assert _tuned(world).clean
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- agreements both parties signed ---------------------------------------------------------


def test_a_decision_under_an_agreement_signed_by_one_side_only_is_a_violation() -> None:
    # A router that ignores the signatures delivers to COD under CAF-COD, which only CAF
    # signed; the auditor re-checks the signatures of the set the decision names.
    one_sided = signed_set(AGREEMENTS.format(status="active"), {"CAF-COD": ["CAF"]})
    world = RoutedWorld(aset=one_sided)
    world.index = PolicyIndex.build(one_sided, PARTICIPANTS)  # terms only: signatures ignored
    world.route(world.seal())

    verdict = world.replay(sets=(one_sided,))

    found = {v.code: v for v in verdict.violations}
    assert set(found) == {ViolationCode.AGREEMENT_NOT_SIGNED, ViolationCode.DECISION_MISMATCH}
    unsigned = found[ViolationCode.AGREEMENT_NOT_SIGNED]
    assert unsigned.offset == world.audit[0].offset
    assert "delivered to COD: agreement CAF-COD is not signed by both parties" in unsigned.detail
    assert "no signature of COD" in unsigned.detail
    # The same routing under the set both parties signed is clean.
    honest = RoutedWorld()
    honest.route(honest.seal())
    assert honest.replay().clean
