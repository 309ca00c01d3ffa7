"""``audit replay`` matches the copies in the hit topics to the router's decisions as it
matches the partner feeds: a copy with no decision, a missing copy, a duplicate and a
tampered copy are each reported with their code, where they are."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from border_exchange.demo.sandbox import make_sandbox
from border_exchange.domain.audit import AuditKind, ChainHead, encode_audit
from border_exchange.domain.audit_values import LogRecord, Verdict, ViolationCode, Window
from border_exchange.domain.audit_verdict import Replay
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.envelope import Header
from border_exchange.domain.hit_routing import HitRouted, HitSigned, hit_audit_record
from border_exchange.domain.hits import (
    HitAction,
    HitReport,
    MessageKind,
    ack_of,
    decode_report,
    report_on,
    seal_ack,
    seal_report,
    signed_message,
)
from border_exchange.domain.naming import audit_topic, hits_topic, outbox_topic
from border_exchange.domain.samples import sample_alert
from tests.unit.test_post_store import sealed

START = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
"""A fixed calendar (the verifier reads no clock): keys valid from START, hits from T0."""
BOX = make_sandbox(
    ["CAF", "COD", "SSD"], 'version: "x"\nagreements: []\n', posts={"COD": ["kasindi"]},
    start=START,
)  # fmt: skip
POST_KEY = BOX.keys["COD.post.kasindi"]
WINDOW = Window(T0 - timedelta(hours=1), T0 + timedelta(days=1))


def _header(alert_id: str) -> Header:
    """The signed header of CAF's wanted person ``alert_id`` as the post holds it."""
    return sealed(sample_alert(AlertType.WANTED_PERSON), alert_id, issued=T0).header


class HitWorld:
    """An honest router's records for hit reports from COD's post on CAF's alerts and CAF's
    acknowledgements back: both outboxes, both audit chains, both hit topics."""

    def __init__(self) -> None:
        self.clock = T0
        self.outbox: dict[str, list[LogRecord]] = {"COD": [], "CAF": []}
        self.audit: dict[str, list[LogRecord]] = {"COD": [], "CAF": []}
        self.heads = {p: ChainHead(f"{outbox_topic(p)}/0") for p in ("COD", "CAF")}
        self.hits: dict[str, list[LogRecord]] = {"CAF": [], "COD": [], "SSD": []}

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    @staticmethod
    def _next(logs: list[LogRecord]) -> int:
        return 0 if not logs else logs[-1].offset + 2

    def _route(self, author: str, recipient: str, kind: MessageKind, value: bytes,
               message: Any, key: bytes) -> None:  # fmt: skip
        at = self._tick()
        source = LogRecord(outbox_topic(author), 0, self._next(self.outbox[author]), at, value,
                           message.alert_id.encode())  # fmt: skip
        self.outbox[author].append(source)
        routed = HitRouted(HitSigned(kind, message, signed_message(value, kind), key))
        assert routed.recipient == recipient
        record = hit_audit_record(self.heads[author], at, source.offset, routed)
        data = encode_audit(record)
        chain = self.audit[author]
        chain.append(LogRecord(audit_topic(author), 0, self._next(chain), at, data))
        self.heads[author] = self.heads[author].after(data, AuditKind(record["kind"]))
        self.copy(recipient, value, at)

    def copy(self, recipient: str, value: bytes, at: datetime | None = None) -> LogRecord:
        """Write ``value`` to ``recipient``'s hit topic (as the router does, or a tamperer)."""
        logs = self.hits[recipient]
        log = LogRecord(hits_topic(recipient), 0, self._next(logs), at or self.clock, value)
        logs.append(log)
        return log

    def report(self, alert_id: str = "alert-1") -> tuple[HitReport, bytes]:
        """COD's post reports a hit on CAF's alert; the router delivers it to CAF."""
        report = report_on(
            _header(alert_id), reporter="COD", post="kasindi",
            key_id=BOX.key_ids["COD.post.kasindi"], hit_at=self.clock - timedelta(minutes=5),
            action=HitAction.OBSERVED, place="Kasindi crossing", contact="radio 7",
            now=self.clock,
        )  # fmt: skip
        value = seal_report(report, POST_KEY, self.clock)
        self._route("COD", "CAF", MessageKind.HIT_REPORT, value, report,
                    bytes(POST_KEY.verify_key))  # fmt: skip
        return report, value

    def acknowledge(self, value: bytes) -> bytes:
        """CAF's desk acknowledges the report in ``value``; the router delivers it to COD."""
        ack = ack_of(decode_report(value), key_id=BOX.key_ids["CAF"], instructions="hold",
                     now=self.clock)  # fmt: skip
        sealed = seal_ack(ack, BOX.keys["CAF"])
        self._route("CAF", "COD", MessageKind.HIT_ACK, sealed, ack,
                    bytes(BOX.keys["CAF"].verify_key))  # fmt: skip
        return sealed

    def replay(self, chains: tuple[str, ...] = ("COD", "CAF")) -> Verdict:
        replay = Replay(WINDOW, BOX.trust, {})
        for pid in chains:
            replay.add_chain(audit_topic(pid), 0, self.audit[pid])
            replay.add_outbox(outbox_topic(pid), 0, self.outbox[pid])
        for logs in self.hits.values():
            replay.add_hits(logs)
        return replay.verdict()


def world() -> tuple[HitWorld, bytes, bytes]:
    w = HitWorld()
    _, report = w.report()
    ack = w.acknowledge(report)
    w.report("alert-2")
    return w, report, ack


def codes(verdict: Verdict) -> list[tuple[ViolationCode, str, int]]:
    return [(v.code, v.topic, v.offset) for v in verdict.violations]


def test_every_delivered_copy_found_once_is_clean_and_counted() -> None:
    w, _, _ = world()
    verdict = w.replay()
    assert verdict.clean, verdict.violations
    assert (verdict.stats.hit_reports, verdict.stats.hit_acks) == (2, 1)
    assert verdict.stats.hit_copies_checked == 3


def test_a_missing_copy_is_reported_at_its_decision() -> None:
    w, _, _ = world()
    w.hits["COD"].clear()  # the acknowledgement never reached COD
    verdict = w.replay()
    assert codes(verdict) == [(ViolationCode.HIT_COPY_MISSING, audit_topic("CAF"), 0)]
    assert "has no record in bx.COD.hits" in verdict.violations[0].detail


def test_a_duplicate_copy_is_reported_where_it_is() -> None:
    w, report, _ = world()
    extra = w.copy("CAF", report)
    verdict = w.replay()
    assert codes(verdict) == [(ViolationCode.HIT_COPY_DUPLICATE, hits_topic("CAF"), extra.offset)]
    assert "already delivered to CAF at offset 0" in verdict.violations[0].detail


def test_a_copy_no_decision_delivers_is_unauthorised() -> None:
    w, _, _ = world()
    report, value = HitWorld().report("alert-9")  # signed by the post, never routed here
    extra = w.copy("CAF", value)
    straight = w.copy("CAF", b"\xc3\x01 written straight into the topic")
    verdict = w.replay()
    assert codes(verdict) == [
        (ViolationCode.HIT_COPY_UNAUTHORISED, hits_topic("CAF"), extra.offset),
        (ViolationCode.HIT_COPY_UNAUTHORISED, hits_topic("CAF"), straight.offset),
    ]
    assert f"hit report {report.hit_id} of COD: no decision" in verdict.violations[0].detail


def test_a_copy_delivered_to_another_service_is_unauthorised_and_the_delivery_missing() -> None:
    w, _, _ = world()
    moved = w.hits["CAF"].pop(0)
    wrong = w.copy("SSD", moved.value)
    verdict = w.replay()
    assert sorted(codes(verdict)) == [
        (ViolationCode.HIT_COPY_MISSING, audit_topic("COD"), 0),
        (ViolationCode.HIT_COPY_UNAUTHORISED, hits_topic("SSD"), wrong.offset),
    ]


def test_a_tampered_copy_fails_its_signature() -> None:
    w, report, _ = world()
    tampered = report.replace(b"Kasindi crossing", b"Kasindi Crossing")
    assert tampered != report
    w.hits["CAF"][0] = dataclasses.replace(w.hits["CAF"][0], value=tampered)
    verdict = w.replay()
    assert codes(verdict) == [(ViolationCode.SIGNATURE_INVALID, hits_topic("CAF"), 0)]
    assert verdict.violations[0].detail.startswith("hit topic copy:")


def test_a_copy_whose_authors_chain_was_not_replayed_is_not_judged() -> None:
    w, _, _ = world()
    verdict = w.replay(chains=("CAF",))  # COD's chain (the reports' decisions) not read
    assert verdict.clean, verdict.violations
    assert verdict.stats.hit_copies_checked == 1  # the acknowledgement to COD
