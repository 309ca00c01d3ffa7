"""The components the demo runs in the background: the router process, border posts, the cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_launcher import ClusterInfo
from border_exchange.adapters.keyfiles import PASSPHRASE_ENV
from border_exchange.adapters.post_store import PostStore
from border_exchange.demo.cast import WAIT
from border_exchange.domain import naming
from border_exchange.domain.labels import Lang
from border_exchange.errors import KafkaError
from border_exchange.services.post import BorderPost


@dataclass
class RunningPost:
    """A border post consuming in the background, with its store."""

    post: BorderPost
    store: PostStore
    path: Path
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def name(self) -> str:
        """``CAF bangui-port``."""
        return f"{self.post.config.participant} {self.post.config.post}"

    @property
    def principal(self) -> str:
        """The post's Kafka user."""
        return naming.post_principal(self.post.config.participant, self.post.config.post)

    async def close(self) -> None:
        """Stop consuming (the store stays on disk, searchable offline)."""
        self.stop.set()
        if not self.task.done():
            # It ends within a second with Kafka up; with Kafka gone (Ctrl-C reaches the
            # brokers too) it may sit in a reconnect: then it is cancelled.
            done, _ = await asyncio.wait({self.task}, timeout=5)
            if not done:
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.task
        self.store.close()


class RouterProcess:
    """``border-exchange router run`` as a process of its own, logging to a file."""

    def __init__(self, config: Path, log_file: Path, passphrase: str) -> None:
        self.config = config
        self.log_file = log_file
        self.passphrase = passphrase
        self.process: asyncio.subprocess.Process | None = None
        self._log_from = 0
        """Where this run's lines begin in the log file (a restart appends to it)."""

    async def crash_and_restart(self) -> float:
        """SIGKILL the router, start it again; seconds from the new start to its partitions."""
        process = self.process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        started = time.monotonic()
        await self.start()
        return time.monotonic() - started

    async def start(self) -> None:
        """Start the router and wait until it has its outbox partitions."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BX_KAFKA_", "BX_ROUTER_"))  # the config file says it all
        }
        env[PASSPHRASE_ENV] = self.passphrase
        self._log_from = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "border_exchange",
                "router",
                "run",
                "--config",
                str(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                preexec_fn=kafka_launcher.die_with_parent,
            )
        deadline = time.monotonic() + WAIT
        while not self._assigned():
            if self.process.returncode is not None:
                raise KafkaError(f"the router stopped at start: {self.last_log_line()}")
            if time.monotonic() > deadline:
                raise KafkaError(f"the router got no outbox partition in {WAIT}s")
            await asyncio.sleep(0.3)

    def _events(self) -> list[dict[str, Any]]:
        """This run's log events, in order."""
        with self.log_file.open("rb") as log:
            log.seek(self._log_from)
            lines = log.read().decode("utf-8", errors="replace").splitlines()
        events = []
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def _assigned(self) -> bool:
        return any(
            e.get("event") == "router.assigned" and e.get("partitions") for e in self._events()
        )

    def start_timeline(self) -> dict[str, float]:
        """How long this run had been running at each step of its start, as it logged them
        (``router.starting``: imports done; ``router.assigned``: every partition fenced and
        rebuilt; ``router.delivering``: its first transaction committed)."""
        steps: dict[str, float] = {}
        for event in self._events():
            name, age = event.get("event"), event.get("process_age")
            if isinstance(name, str) and isinstance(age, int | float) and name not in steps:
                steps[name] = float(age)
        return steps

    def log_mark(self) -> int:
        """Where the router's log ends now: ``wait_for_event`` looks only after it."""
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    async def wait_for_event(self, events: Sequence[str], since: int) -> dict[str, Any]:
        """The first of the router's log events named in ``events`` after ``since``."""
        deadline = time.monotonic() + WAIT
        while True:
            with self.log_file.open("rb") as log:
                log.seek(since)
                lines = log.read().decode("utf-8", errors="replace").splitlines()
            for line in lines:
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict) and event.get("event") in events:
                        return event
            if time.monotonic() > deadline:
                raise KafkaError(f"the router logged none of {', '.join(events)} in {WAIT}s")
            await asyncio.sleep(0.3)

    def last_log_line(self) -> str:
        """The router's last log line (the reason it stopped, usually)."""
        lines = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no log)"

    async def stop(self) -> int | None:
        """SIGTERM (it finishes its transaction), SIGKILL after 15 s; the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        return process.returncode


async def post_check(db: Path, lang: Lang, *query: str) -> tuple[int, str]:
    """``border-exchange post check --db DB QUERY``: its exit code (0 on a hit) and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "border_exchange",
        "post",
        "check",
        "--db",
        str(db),
        "--lang",
        lang,
        *query,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return int(process.returncode or 0), output.decode("utf-8", errors="replace")


async def wait_until(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        if time.monotonic() > deadline:
            raise KafkaError(f"gave up waiting, after {WAIT}s, for {what}")
        await asyncio.sleep(0.3)


class KafkaHandle:
    """The demo's cluster, stopped once, whoever stops it first."""

    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        self.running = True

    def stop(self) -> None:
        """Stop every node (the data stays, with the rest of the directory)."""
        if self.running:
            self.running = False
            kafka_launcher.stop_cluster(self.info)
