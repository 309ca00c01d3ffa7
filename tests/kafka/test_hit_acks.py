"""An acknowledgement is routed only for a hit report delivered to the acknowledging origin,
from the post it names, on the alert it names; any other is quarantined as
``ACK_UNKNOWN_HIT``, told to the origin, and the stream goes on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from border_exchange.domain import naming
from border_exchange.domain.audit_values import Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.hits import HitReport, ack_of, decode_ack, decode_report, seal_ack
from border_exchange.domain.quarantine_notice import decode_notice
from border_exchange.services.auditor import ReplayRequest, replay, summary_lines
from tests.conftest import KafkaCluster
from tests.exchange import running
from tests.kafka.test_hits import exchange, report, sealed

pytestmark = pytest.mark.kafka


async def test_only_an_acknowledgement_of_a_hit_delivered_to_the_origin_goes_back(
    kafka: KafkaCluster,
) -> None:
    ex = await exchange(kafka)
    a, b, _ = ex.ids
    alert = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    hit = report(ex, b, alert)
    never_sent = report(ex, b, alert)  # signed at the post, never sent: a never saw it
    began = datetime.now(UTC)

    def answer(about: HitReport, **changes: object) -> tuple[str, bytes, bytes]:
        ack = replace(
            ack_of(
                about,
                key_id=ex.sandbox.key_ids[a],
                instructions="Hold him.",
                now=datetime.now(UTC),
            ),
            **changes,  # type: ignore[arg-type]  # test overrides by name
        )
        value = seal_ack(ack, ex.sandbox.keys[a])
        return naming.outbox_topic(a), alert.header.alert_id.encode(), value

    async with running(ex.router()):
        await ex.publish(alert)
        await ex.feed(b, a, expect=1)
        await ex.publish(raw=[sealed(ex, hit)])
        (delivered,) = await ex.read(naming.hits_topic(a), expect=1, wait=90)
        assert decode_report(delivered).hit_id == hit.hit_id
        unknown = answer(never_sent)  # the alert was routed to b, the hit never reached a
        other_post = answer(hit, post="west")  # a hit a had, but from another post
        good = answer(hit)
        await ex.publish(raw=[unknown, other_post, good])
        (back,) = [decode_ack(v) for v in await ex.read(naming.hits_topic(b), expect=1, wait=90)]
        notices = [
            decode_notice(v) for v in await ex.read(naming.notices_topic(a), expect=2, wait=90)
        ]

    assert back.hit_id == hit.hit_id  # the stream went on past the two refused
    assert decode_ack(good[2]).ack_id == back.ack_id
    assert sorted((n.message_id, n.reason) for n in notices) == sorted(
        [
            (decode_ack(unknown[2]).ack_id, "ACK_UNKNOWN_HIT"),
            (decode_ack(other_post[2]).ack_id, "ACK_UNKNOWN_HIT"),
        ]
    )
    details = " | ".join(n.detail for n in notices)
    assert "no such hit report was delivered to" in details
    assert "not by" in details  # the post named is not the one that reported
    assert await ex.read(naming.hits_topic(b)) == [good[2]]  # one copy, b's only
    assert await ex.read(naming.notices_topic(b)) == []
    window = Window(began - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    verdict = await replay(ex.settings, ex.sandbox.trust, ReplayRequest(window, participant=a))
    assert verdict.clean, summary_lines(verdict)
    assert (verdict.stats.hit_reports, verdict.stats.hit_acks, verdict.stats.quarantined) == (
        1,
        1,
        2,
    )

    # Copies written into the hit topics other than by a decision are found: the
    # acknowledgement again in b's topic, the report again (tampered with) in a's, and a
    # report a never had a decision on.
    tampered = delivered.replace(b"Bangui port ferry", b"Bangui port Ferry")
    assert tampered != delivered
    await ex.publish(
        raw=[
            (naming.hits_topic(b), good[1], good[2]),
            (naming.hits_topic(a), good[1], tampered),
            (naming.hits_topic(a), good[1], sealed(ex, never_sent)[2]),
        ]
    )
    window = Window(began - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    verdict = await replay(ex.settings, ex.sandbox.trust, ReplayRequest(window, participant=a))
    assert sorted((v.code.value, v.topic) for v in verdict.violations) == [
        ("HIT_COPY_DUPLICATE", naming.hits_topic(a)),
        ("HIT_COPY_DUPLICATE", naming.hits_topic(b)),
        ("HIT_COPY_UNAUTHORISED", naming.hits_topic(a)),
    ], summary_lines(verdict)
