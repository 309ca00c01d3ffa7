"""The demo's hit procedure: Bangui port reports a hit on COD's wanted person, COD's desk
lists it with its deadline and acknowledges it, and the post sees the acknowledgement.

Each side goes through the functions its CLI commands call (``post report-hit``,
``desk hits``, ``desk ack``, ``post hits``), as its own Kafka user.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from border_exchange.adapters.hit_queue import HitQueue
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.demo.cast import WAIT
from border_exchange.demo.narration import short
from border_exchange.demo.processes import RunningPost
from border_exchange.demo.sandbox import Sandbox
from border_exchange.domain.hit_deadlines import DeadlineTable, HitStatus
from border_exchange.domain.hits import HitAction
from border_exchange.domain.trust import post_owner
from border_exchange.errors import KafkaError
from border_exchange.services import hits

INSTRUCTIONS = "Retenez-le ; notre officier de liaison arrive par le bac de 14 h."
"""What COD's desk tells the post to do."""


def _at(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


async def report_and_acknowledge(
    post: RunningPost,
    post_login: KafkaSettings,
    desk_login: KafkaSettings,
    sandbox: Sandbox,
    alert_id: str,
    say: Callable[..., None],
) -> bool:
    """Run the procedure between ``post`` and the desk of the alert's origin; whether the
    post came to hold the desk's acknowledgement of its report."""
    participant, name = post.post.config.participant, post.post.config.post
    owner = post_owner(participant, name)
    trust = sandbox.trust
    now = datetime.now(UTC)
    report, value = hits.prepare_report(
        post.store,
        reporter=participant,
        post=name,
        key=sandbox.keys[owner],
        key_id=sandbox.key_ids[owner],
        alert_id=alert_id,
        version=None,
        hit_at=now - timedelta(minutes=10),
        action=HitAction.ARRESTED,
        place="Bangui port, ferry landing",
        contact="+236 72 00 00 00 (poste de Bangui port)",
        remarks="Contrôlé au débarquement du bac de Zongo",
        now=now,
    )
    origin = report.alert_origin
    say(
        f"$ border-exchange post report-hit --participant {participant} --post {name} "
        f"--alert {short(alert_id)} --action ARRESTED ..."
    )
    with HitQueue(post.path) as queue:
        queue.queue(report, value)
        sent = await hits.send_queued(post_login, queue, participant)
        say(
            f"hit {short(report.hit_id)} on {origin}'s alert v{report.alert_version}: signed "
            f"with the post's own key {sandbox.key_ids[owner]}, queued, sent {sent.sent} "
            f"(left {sent.left})"
        )

        table = DeadlineTable()
        rows: list[hits.DeskHit] = []
        deadline = time.monotonic() + WAIT
        while not rows:
            found = await hits.desk_hits(desk_login, origin, trust, table, datetime.now(UTC))
            rows = [row for row in found if row.report.hit_id == report.hit_id]
            if not rows and time.monotonic() > deadline:
                raise KafkaError(f"gave up waiting, after {WAIT}s, for the hit at {origin}")
            if not rows:
                await asyncio.sleep(0.5)
        (row,) = rows
        say(f"$ border-exchange desk hits --as {origin}")
        say(
            f"{short(report.hit_id)}  {row.status.value} due {_at(row.deadline)} "
            f"({report.alert_type.value}, {report.priority.value}: "
            f"{(row.deadline - report.reported_at).total_seconds() / 3600:g} h)  "
            f"{report.action.value} at {report.place} by {report.reporter}/{report.post}",
            6,
        )
        ack = await hits.acknowledge(
            desk_login,
            row.report,
            key=sandbox.keys[origin],
            key_id=sandbox.key_ids[origin],
            instructions=INSTRUCTIONS,
            now=datetime.now(UTC),
            desk_contact=f"bureau national {origin}",
        )
        say(f"$ border-exchange desk ack {short(report.hit_id)} --as {origin} --instructions ...")
        say(f"acknowledgement {short(ack.ack_id)} signed with {origin}'s key, routed to the post")

        deadline = time.monotonic() + WAIT
        while not await hits.collect_acks(post_login, queue, participant, name, trust):
            if time.monotonic() > deadline:
                raise KafkaError(f"gave up waiting, after {WAIT}s, for the acknowledgement")
            await asyncio.sleep(0.5)
        (kept,) = [hit for hit in queue.reports() if hit.hit_id == report.hit_id]
    say(f"$ border-exchange post hits --participant {participant} --post {name}")
    answered = kept.ack_id == ack.ack_id and kept.instructions == INSTRUCTIONS
    say(
        f"{name} sees the acknowledgement of {origin}: {kept.instructions}"
        if answered
        else "UNEXPECTED: the post does not hold the desk's acknowledgement",
        6,
    )
    return answered and row.status is HitStatus.OPEN
