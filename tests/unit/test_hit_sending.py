"""``post run`` sends the post's queued hit reports by itself: tried every interval, each
report marked sent only once the sender says the broker took it, none sent twice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.trust import Hub, TrustStore
from border_exchange.errors import ConfigError, KafkaError
from border_exchange.services import hits
from tests.unit.test_hits import ack, report

SETTINGS = KafkaSettings("127.0.0.1:1")
TRUST = TrustStore(MappingProxyType({}), Hub((), ()))


class FlakyLink:
    """A sender that finds the link down for its first ``down`` attempts, then sends every
    queued report as ``send_queued`` does (marking each once sent); it stops the loop once
    ``until`` reports went out."""

    def __init__(self, stop: asyncio.Event, *, down: int, until: int) -> None:
        self.stop, self.down, self.until = stop, down, until
        self.attempts = 0
        self.sent: Counter[str] = Counter()
        self.went = asyncio.Event()
        """Set once a report went out."""

    async def __call__(
        self, _: KafkaSettings, queue: HitQueue, participant: str
    ) -> hits.SendResult:
        assert participant == "CAF"
        self.attempts += 1
        pending = queue.queued()
        if self.attempts <= self.down:
            return hits.SendResult(0, len(pending), "KafkaConnectionError: link down")
        for hit_id, _alert, _value in pending:
            self.sent[hit_id] += 1
            queue.mark_sent(hit_id, datetime.now(UTC))
            self.went.set()
        if sum(self.sent.values()) >= self.until:
            self.stop.set()
        return hits.SendResult(len(pending), 0)


async def test_reports_queued_while_the_link_is_down_go_once_when_it_is_back(
    tmp_path: Path,
) -> None:
    stop = asyncio.Event()
    link = FlakyLink(stop, down=3, until=2)
    with HitQueue(tmp_path / "post.db") as queue:
        for hit_id in ("hit-1", "hit-2"):
            queue.queue(replace(report(), hit_id=hit_id), hit_id.encode())

        async with asyncio.timeout(30):
            await hits.keep_sending(SETTINGS, queue, "CAF", stop, every=0.01, send=link)

        states = {hit.hit_id: hit.state for hit in queue.reports()}
    assert link.attempts == 4  # three with the link down, then the one that sent
    assert link.sent == {"hit-1": 1, "hit-2": 1}
    assert states == {"hit-1": SendState.SENT, "hit-2": SendState.SENT}


async def test_a_report_queued_while_it_runs_goes_with_a_later_attempt_and_once(
    tmp_path: Path,
) -> None:
    stop = asyncio.Event()
    link = FlakyLink(stop, down=0, until=2)
    with HitQueue(tmp_path / "post.db") as queue:
        queue.queue(replace(report(), hit_id="hit-1"), b"1")
        sender = asyncio.create_task(
            hits.keep_sending(SETTINGS, queue, "CAF", stop, every=0.01, send=link)
        )
        async with asyncio.timeout(30):
            await link.went.wait()
        queue.queue(replace(report(), hit_id="hit-2"), b"2")  # 'post report-hit --queue-only'
        async with asyncio.timeout(30):
            await sender
    assert link.sent == {"hit-1": 1, "hit-2": 1}
    assert link.attempts >= 2


async def test_a_set_stop_ends_the_loop_after_one_attempt(tmp_path: Path) -> None:
    stop = asyncio.Event()
    link = FlakyLink(stop, down=10, until=1)
    with HitQueue(tmp_path / "post.db") as queue:
        queue.queue(report(), b"1")
        stop.set()
        await hits.keep_sending(SETTINGS, queue, "CAF", stop, every=3600, send=link)
        assert [hit.state for hit in queue.reports()] == [SendState.QUEUED]
    assert link.attempts == 0


async def test_an_interval_that_is_not_positive_is_refused(tmp_path: Path) -> None:
    with HitQueue(tmp_path / "post.db") as queue, pytest.raises(ConfigError, match="positive"):
        await hits.keep_sending(SETTINGS, queue, "CAF", asyncio.Event(), every=0)


def test_post_run_names_the_interval_and_refuses_a_bad_one(tmp_path: Path) -> None:
    def post_run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "border_exchange", "post", "run", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    helped = post_run("--help")
    assert "--send-hits-every" in helped.stdout
    assert f"default {hits.SEND_EVERY_SECONDS:g}" in " ".join(helped.stdout.split())
    refused = post_run(
        *("--participant", "CAF", "--post", "bangui-port", "--db", str(tmp_path / "p.db")),
        *("--trust", str(tmp_path / "trust.yaml"), "--send-hits-every", "0"),
    )
    assert refused.returncode != 0
    assert "--send-hits-every: 0 must be a positive number of seconds" in refused.stderr


async def test_the_loop_fetches_answers_after_sending_and_goes_on_when_the_fetch_fails(
    tmp_path: Path,
) -> None:
    stop = asyncio.Event()
    link = FlakyLink(stop, down=0, until=99)
    fetched: list[bool] = []

    async def collect() -> int:
        fetched.append(hits.awaiting_answer(queue))  # after each send attempt
        if len(fetched) == 1:
            raise KafkaError("cannot read bx.CAF.hits: link down")
        if len(fetched) == 3:
            stop.set()
        return 0

    with HitQueue(tmp_path / "post.db") as queue:
        queue.queue(report(), b"1")
        assert not hits.awaiting_answer(queue)  # queued: nothing to wait for yet
        async with asyncio.timeout(30):
            await hits.keep_sending(
                SETTINGS, queue, "CAF", stop, every=0.01, send=link, collect=collect
            )
        assert hits.awaiting_answer(queue)  # sent, not answered
        assert queue.acknowledge(ack())
        assert not hits.awaiting_answer(queue)  # answered: nothing more to fetch
    assert fetched == [True, True, True]  # a failed fetch did not stop the loop
    assert link.sent == {"hit-1": 1}


async def test_no_answer_is_fetched_while_none_is_awaited(tmp_path: Path) -> None:
    with HitQueue(tmp_path / "post.db") as queue:
        queue.queue(report(), b"1")  # queued, never sent
        # SETTINGS names no broker: a read would fail; nothing awaited, nothing is read.
        assert await hits.collect_awaited(SETTINGS, queue, "CAF", "bangui-port", TRUST) == 0
