"""The demo's hit procedure: Bangui port reports a hit on COD's wanted person, COD's desk
lists it with its deadline and acknowledges it, and the post sees the acknowledgement.

The post officer reports the hit through the post's page (``post serve --key``: the hit
form on the alert's page, which first refuses an incomplete form); the rest goes through
the functions the CLI commands call (the sender of ``post run``, ``desk hits``,
``desk ack``, ``post hits``), each side as its own Kafka user.
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
from border_exchange.demo.visit import report_on_page
from border_exchange.domain.hit_deadlines import DeadlineTable, HitStatus
from border_exchange.domain.hits import decode_report
from border_exchange.domain.times import utc_minute
from border_exchange.domain.trust import post_owner
from border_exchange.errors import KafkaError
from border_exchange.services import hits

INSTRUCTIONS = "Retenez-le ; notre officier de liaison arrive par le bac de 14 h."
"""What COD's desk tells the post to do."""


async def report_and_acknowledge(
    post: RunningPost,
    post_login: KafkaSettings,
    desk_login: KafkaSettings,
    sandbox: Sandbox,
    alert: str,
    say: Callable[..., None],
) -> bool:
    """Run the procedure between ``post`` and the desk of the alert's origin (``alert``:
    ``ORIGIN/alert-id``), the report entered on the post's page; whether the post came to
    hold the desk's acknowledgement of its report."""
    participant, name = post.post.config.participant, post.post.config.post
    owner = post_owner(participant, name)
    trust = sandbox.trust
    key_id = sandbox.key_ids[owner]
    say(
        f"$ BX_KEY_PASSPHRASE=... border-exchange post serve --db {post.path.name} "
        f"--participant {participant} --post {name} --key keys/{key_id}.pem --trust trust.yaml"
    )
    hit_at = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    form = {
        "action": "ARRESTED",
        "place": "Bangui port, ferry landing",
        "contact": "+236 72 00 00 00 (poste de Bangui port)",
        "remarks": "Contrôlé au débarquement du bac de Zongo",
        "at": hit_at.isoformat(),
    }
    page = await report_on_page(
        post.path,
        "bangui-duty",
        hits.Reporter(participant, name, sandbox.keys[owner], key_id),
        alert,
        ({**form, "action": "NOT_ACTED"}, form),  # first nothing done, and no reason given
        "en",
    )
    say(f"officer bangui-duty opens {alert} on the post page ({page.url}/) and fills the hit form")
    say(f"the page refuses NOT_ACTED without a reason: {'; '.join(page.refused)}", 6)
    say(f"then ARRESTED: {page.queued or 'UNEXPECTED: nothing queued'}", 6)
    with HitQueue(post.path) as queue:
        (value,) = [v for hit_id, _, v in queue.queued() if hit_id == page.hit_id]
        report = decode_report(value)
        origin = report.alert_origin
        sent = await hits.send_queued(post_login, queue, participant)
        say(
            f"hit {short(report.hit_id)} on {origin}'s alert v{report.alert_version}: signed "
            f"with the post's own key {key_id}, queued, sent {sent.sent} (left {sent.left}) "
            "by the sender 'post run' runs every 30 s"
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
            f"{short(report.hit_id)}  {row.status.value} due {utc_minute(row.deadline)} "
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
