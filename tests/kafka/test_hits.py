"""The hit procedure on a real broker: a report reaches the alert's origin only, the
acknowledgement flows back, anything else is quarantined and told to its sender only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from border_exchange.adapters.hit_queue import HitQueue
from border_exchange.adapters.post_store import Accepted, PostStore
from border_exchange.domain import naming
from border_exchange.domain.audit_values import Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import decode_record
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.hit_deadlines import DeadlineTable, HitStatus
from border_exchange.domain.hits import (
    HitAction,
    HitReport,
    ack_of,
    decode_ack,
    decode_report,
    report_on,
    seal_ack,
    seal_report,
)
from border_exchange.domain.quarantine_notice import decode_notice
from border_exchange.domain.signing import section_content
from border_exchange.domain.trust import post_owner
from border_exchange.services import hits
from border_exchange.services.auditor import ReplayRequest, audit_entries, replay, summary_lines
from tests.clock import days, iso
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, make_exchange, running

pytestmark = pytest.mark.kafka

AGREEMENTS = """
version: "hits-test"
agreements:
  - id: A-B
    parties: [P0, P1]
    status: active
    effective_from: SINCE
    flows:
      - from: P0
        to: P1
        types:
          WANTED_PERSON: {sections: all, max_handling: H2}
  - id: A-C
    parties: [P0, P2]
    status: active
    effective_from: SINCE
    flows:
      - from: P2
        to: P0
        types:
          VEHICLE_NOTICE: {sections: all, max_handling: H2}
""".replace("SINCE", iso(days(-30)))

POST = "east"


async def exchange(kafka: KafkaCluster) -> Exchange:
    """P0 sends P1 wanted persons; P2 receives nothing of P0's. Each has a post ``east``."""
    return await make_exchange(kafka, 3, AGREEMENTS, posts=(POST,))


def report(ex: Exchange, reporter: str, alert: Envelope, **changes: object) -> HitReport:
    owner = post_owner(reporter, POST)
    now = datetime.now(UTC)
    base = report_on(
        alert.header,
        reporter=reporter,
        post=POST,
        key_id=ex.sandbox.key_ids[owner],
        hit_at=now - timedelta(minutes=5),
        action=HitAction.ARRESTED,
        place="Bangui port ferry",
        contact="+236 72 00 00 00",
        now=now,
        remarks="held at the post",
    )
    return replace(base, **changes)  # type: ignore[arg-type]  # test overrides by name


def sealed(
    ex: Exchange, value: HitReport, key: SigningKey | None = None
) -> tuple[str, bytes, bytes]:
    """The outbox record of ``value`` as the reporting post writes it."""
    signing = key or ex.sandbox.keys[post_owner(value.reporter, value.post)]
    return (
        naming.outbox_topic(value.reporter),
        value.alert_id.encode(),
        seal_report(value, signing),
    )


async def audit_kinds(ex: Exchange, origin: str) -> list[dict[str, Any]]:
    return [decode_record(v)[1] for v in await ex.read(naming.audit_topic(origin))]


async def test_a_report_reaches_the_origin_only_and_the_acknowledgement_flows_back(
    kafka: KafkaCluster,
) -> None:
    ex = await exchange(kafka)
    a, b, c = ex.ids
    alert = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    hit = report(ex, b, alert)
    began = datetime.now(UTC)
    async with running(ex.router()):
        await ex.publish(alert)
        await ex.feed(b, a, expect=1)
        await ex.publish(raw=[sealed(ex, hit)])
        (delivered,) = [
            decode_report(v) for v in await ex.read(naming.hits_topic(a), expect=1, wait=90)
        ]
        answer = ack_of(
            delivered,
            key_id=ex.sandbox.key_ids[a],
            instructions="Hold him; our liaison officer comes tomorrow.",
            now=datetime.now(UTC),
        )
        await ex.publish(
            raw=[
                (
                    naming.outbox_topic(a),
                    alert.header.alert_id.encode(),
                    seal_ack(answer, ex.sandbox.keys[a]),
                )
            ]
        )
        (acked,) = [decode_ack(v) for v in await ex.read(naming.hits_topic(b), expect=1)]

    assert replace(delivered, signature=b"") == hit
    assert (acked.hit_id, acked.instructions) == (hit.hit_id, answer.instructions)
    # Nobody else sees the report or the acknowledgement; nothing is quarantined.
    assert await ex.read(naming.hits_topic(c)) == []
    assert len(await ex.read(naming.hits_topic(a))) == 1
    for pid in ex.ids:
        assert await ex.read(naming.notices_topic(pid)) == []
    reported = [r for r in await audit_kinds(ex, b) if r["kind"] == "HIT_REPORT"]
    assert [(r["message_id"], r["alert_id"]) for r in reported] == [(hit.hit_id, hit.alert_id)]
    assert [o["participant"] for o in reported[0]["outcomes"]] == [a]
    acks = [r for r in await audit_kinds(ex, a) if r["kind"] == "HIT_ACK"]
    assert [r["message_id"] for r in acks] == [answer.ack_id]
    # The audit replay checks and counts both; the report is one of b's disclosures.
    window = Window(began - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    verdict = await replay(
        ex.settings, ex.sandbox.trust, ReplayRequest(window, participant=a)
    )  # a and its partners: this exchange
    assert verdict.clean, summary_lines(verdict)
    assert (verdict.stats.hit_reports, verdict.stats.hit_acks) == (1, 1)
    disclosed, problems = await audit_entries(ex.settings, ex.sandbox.trust, b, window)
    assert problems == []
    assert [(d.operation, d.recipient, d.message_id) for d in disclosed] == [
        ("HIT_REPORT", a, hit.hit_id)
    ]


async def test_reports_never_received_forged_cancelled_or_on_unknown_versions_are_quarantined(
    kafka: KafkaCluster,
) -> None:
    ex = await exchange(kafka)
    a, b, c = ex.ids
    alert = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    other = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    cancel = ex.seal(
        ex.alert(
            AlertType.WANTED_PERSON,
            a,
            alert_id=other.header.alert_id,
            version=2,
            operation="CANCEL",
            cancel_reason="arrested elsewhere",
            sections={},
        )
    )
    never = report(ex, c, alert)  # c never received it
    forged = report(ex, b, alert)  # signed by b's service key, not its post's
    cancelled = report(ex, b, other)
    unknown = report(ex, b, alert, alert_version=7)
    good = report(ex, b, alert)
    began = datetime.now(UTC)
    async with running(ex.router()):
        await ex.publish(alert, other, cancel)
        await ex.feed(b, a, expect=3)
        await ex.publish(
            raw=[
                sealed(ex, never),
                sealed(ex, forged, key=ex.sandbox.keys[b]),
                sealed(ex, cancelled),
                sealed(ex, unknown),
                sealed(ex, good),
            ]
        )
        delivered = [
            decode_report(v) for v in await ex.read(naming.hits_topic(a), expect=1, wait=90)
        ]
        notices_b = [
            decode_notice(v) for v in await ex.read(naming.notices_topic(b), expect=3, wait=90)
        ]
        notices_c = [
            decode_notice(v) for v in await ex.read(naming.notices_topic(c), expect=1, wait=90)
        ]

    assert [r.hit_id for r in delivered] == [good.hit_id]  # the stream went on
    assert {(n.message_id, n.reason) for n in notices_b} == {
        (forged.hit_id, "HIT_FORGED_REPORTER"),
        (cancelled.hit_id, "HIT_ALERT_CANCELLED"),
        (unknown.hit_id, "HIT_UNKNOWN_VERSION"),
    }
    assert [(n.message_id, n.reason) for n in notices_c] == [(never.hit_id, "HIT_NOT_RECEIVED")]
    # Each notice names its own service's record, and the origin is told nothing.
    assert {n.participant for n in notices_b} == {b}
    assert {n.source_topic for n in notices_c} == {naming.outbox_topic(c)}
    assert await ex.read(naming.notices_topic(a)) == []
    window = Window(began - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    verdict = await replay(
        ex.settings, ex.sandbox.trust, ReplayRequest(window, participant=a)
    )  # a and its partners: this exchange
    assert verdict.clean, summary_lines(verdict)
    assert (verdict.stats.hit_reports, verdict.stats.quarantined) == (1, 4)
    quarantined = [decode_record(v)[1] for v in await ex.read(naming.QUARANTINE_TOPIC)]
    reasons = {
        r["reason"]
        for r in quarantined
        if r["source_topic"] in {naming.outbox_topic(p) for p in (b, c)}
    }
    assert reasons == {
        "HIT_NOT_RECEIVED",
        "HIT_FORGED_REPORTER",
        "HIT_ALERT_CANCELLED",
        "HIT_UNKNOWN_VERSION",
    }


async def test_a_quarantine_notice_reaches_the_service_whose_alert_was_refused_and_no_other(
    kafka: KafkaCluster,
) -> None:
    ex = await exchange(kafka)
    a, b, c = ex.ids
    stranger = SigningKey.generate()
    forged = ex.seal(ex.alert(AlertType.WANTED_PERSON, a), key=stranger)
    async with running(ex.router()):
        await ex.publish(forged)
        (notice,) = [decode_notice(v) for v in await ex.read(naming.notices_topic(a), expect=1)]
        good = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
        await ex.publish(good)
        await ex.feed(b, a, expect=1)

    assert (notice.participant, notice.reason, notice.message_id) == (
        a,
        "BAD_SIGNATURE",
        forged.header.message_id,
    )
    assert notice.source_topic == naming.outbox_topic(a)
    assert notice.message_kind == "ALERT"
    for pid in (b, c):
        assert await ex.read(naming.notices_topic(pid)) == []


async def test_the_post_reports_the_desk_sees_the_deadline_and_answers_and_the_post_sees_it(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ex = await exchange(kafka)
    a, b, _ = ex.ids
    alert = ex.seal(ex.alert(AlertType.WANTED_PERSON, a, priority="ROUTINE"))
    owner = post_owner(b, POST)
    async with running(ex.router()):
        await ex.publish(alert)
        (copy,) = await ex.feed(b, a, expect=1)
        db = tmp_path / "post.db"
        with PostStore.open(db) as store:
            sections = {n: section_content(copy, n) for n in copy.present_sections}
            store.apply([Accepted(naming.feed_topic(b, a), 0, 0, copy, sections)])
            report, value = hits.prepare_report(
                store,
                reporter=b,
                post=POST,
                key=ex.sandbox.keys[owner],
                key_id=ex.sandbox.key_ids[owner],
                alert_id=alert.header.alert_id,
                version=None,
                hit_at=datetime.now(UTC) - timedelta(minutes=2),
                action=HitAction.ARRESTED,
                place="Bangui port ferry",
                contact="+236 72 00 00 00",
            )
        with HitQueue(db) as queue:
            queue.queue(report, value)
            assert (await hits.send_queued(ex.settings, queue, b)) == hits.SendResult(1, 0)
            assert (await hits.send_queued(ex.settings, queue, b)) == hits.SendResult(0, 0)
            await ex.read(naming.hits_topic(a), expect=1)
            now = datetime.now(UTC)
            table = DeadlineTable()
            (row,) = await hits.desk_hits(ex.settings, a, ex.sandbox.trust, table, now)
            assert row.report.hit_id == report.hit_id
            assert row.deadline == report.reported_at + timedelta(hours=12)  # routine person
            assert row.status is HitStatus.OPEN
            late = await hits.desk_hits(
                ex.settings, a, ex.sandbox.trust, table, now + timedelta(hours=13)
            )
            assert [r.status for r in late] == [HitStatus.OVERDUE]
            ack = await hits.acknowledge(
                ex.settings,
                row.report,
                key=ex.sandbox.keys[a],
                key_id=ex.sandbox.key_ids[a],
                instructions="Hold him for extradition; liaison officer on the way.",
                now=datetime.now(UTC),
            )
            await ex.read(naming.hits_topic(b), expect=1)
            assert await hits.collect_acks(ex.settings, queue, b, POST, ex.sandbox.trust) == 1
            (kept,) = queue.reports()
        answered = await hits.desk_hits(ex.settings, a, ex.sandbox.trust, table, now)
    assert (kept.ack_id, kept.instructions) == (ack.ack_id, ack.instructions)
    assert [r.status for r in answered] == [HitStatus.ACKNOWLEDGED]
