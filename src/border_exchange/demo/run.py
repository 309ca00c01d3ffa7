"""``run_demo``: start a local Kafka, tell the story, stop everything, print the summary."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import structlog

from border_exchange.adapters import kafka_launcher
from border_exchange.demo.narration import Narrator
from border_exchange.demo.processes import KafkaHandle
from border_exchange.demo.story import DemoOptions, DemoResult, Story, tell
from border_exchange.errors import ConfigError


def _work_directory(options: DemoOptions) -> Path:
    if options.directory is None:
        return Path(tempfile.mkdtemp(prefix="bx-demo-"))
    directory = options.directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"--dir {directory} is not empty; give a new or empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _log_to(path: Path) -> logging.Handler:
    """Send the components' structured logs and aiokafka's logs to ``path``, not the screen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = path.open("a", encoding="utf-8")  # closed with the handler
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def _unlog(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
    structlog.reset_defaults()


def print_summary(narrator: Narrator, result: DemoResult) -> None:
    say = narrator.say
    say("\nSummary", 0)
    say(f"audit replay: {result.violations} violations", 2)
    yes, hit = ("yes", "NO"), ("hit", "NO HIT")
    checks = (
        ("photo withheld at CAF's post", result.photo_withheld, yes),
        ("search through CAF's post page", result.page_hit, hit),
        (
            "hit at CAF's post reported, listed open at COD's desk, acknowledgement back",
            result.hit_acknowledged,
            yes,
        ),
        ("cancellation reached every earlier recipient", result.cancel_reached, yes),
        (
            "backup of CAF's post taken before the cancellation unreadable after it",
            result.backup_shredded,
            yes,
        ),
        ("oversized photo refused, 5 MB outbox record quarantined", result.oversize_refused, yes),
        (
            "post rebuilt from the state topics, cancelled alert absent",
            result.rebuilt_from_state,
            yes,
        ),
        (
            "trust store: under-signed admission refused, majority-approved one taken",
            result.store_governed,
            yes,
        ),
        ("offline lookup at COD's post (Kafka stopped)", result.lookup_hit, hit),
    )
    for label, passed, (passed_word, failed_word) in checks:
        say(f"{label}: {passed_word if passed else failed_word}", 2)
    say("Timings", 0)
    width = max(len(title) for title, _ in result.timings)
    for number, (title, took) in enumerate(result.timings, start=1):
        say(f"{number:2}. {title:<{width}} {took:6.1f} s", 2)
    verdict = "under" if result.elapsed < 180 else "OVER"
    say(f"    {'total':<{width}} {result.elapsed:6.1f} s ({verdict} 3 minutes)", 2)
    if result.kept:
        say(f"Files and logs kept in {result.directory}", 0)
    else:
        say(f"Files and logs removed ({result.directory}); --keep keeps them", 0)
    say("Demo " + ("complete: every check passed" if result.ok else "FAILED: see above"), 0)


def run_demo(options: DemoOptions, out: TextIO | None = None) -> DemoResult:
    """Start Kafka, tell the story, stop everything; print it all to ``out``."""
    started = time.monotonic()
    narrator = Narrator(out or sys.stdout)
    directory = _work_directory(options)
    narrator.say("border-exchange demo: the whole exchange on a local Kafka", 0)
    narrator.say(f"working directory: {directory}", 0)
    handler = _log_to(directory / "logs" / "demo.log")
    succeeded = interrupted = False
    kafka: KafkaHandle | None = None
    try:
        with narrator.step("Start a local Kafka (the first run fetches its jars)"):
            # Started from this thread: the brokers are bound to die with it.
            info = kafka_launcher.start_cluster(1, base_dir=directory / "kafka")
            kafka = KafkaHandle(info)
            narrator.say(
                f"Kafka {info.kafka_version}, one KRaft node; SASL/SCRAM listener with the "
                f"authorizer at {info.client_bootstrap}; logs in {directory / 'kafka'}"
            )
        story = Story(narrator, directory, options, kafka)

        async def main() -> DemoResult:
            try:
                return await tell(story)
            finally:
                await story.close()

        result = asyncio.run(main())
        kafka.stop()
        result = replace(result, timings=tuple(narrator.timings))
        succeeded = True
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if kafka is not None:
            kafka.stop()
        _unlog(handler)
        # After an error the files stay, for its logs; after Ctrl-C or success, only on --keep.
        if options.keep or not (succeeded or interrupted):
            if not succeeded:
                print(f"border-exchange demo: files and logs kept in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    final = replace(result, elapsed=time.monotonic() - started)
    print_summary(narrator, final)
    return final
