"""Router benchmark: throughput against a bare transactional pass-through, latency, memory.

Starts its own one-node Kafka with the project's launcher and measures, in one run:

(a) a raw aiokafka consume-to-produce pass-through in transactions, same message sizes;
(b) the router (decode, verify, policy, fan-out to 3 partners, audit, quarantine checks);
(c) a bare transactional fan-out writing what the router writes per message (3 feed
    copies and an audit record, in record batches, one transaction per partition for
    what queued while the last committed, every send acknowledged), with no checks:
    b/c is what the router's checks cost beside its I/O;
the bare Ed25519 verify rate of the library the router uses; p50/p99 latency from
publish to partner feed at a steady rate; and the router process's RSS while a
backlog drains.

Usage: python bench/bench_router.py [--messages 20000] [--backlog 100000] [--rate 1000]
       [--seconds 30] [--warmup 90] [--throughput-only] [--sealed]
       python bench/bench_router.py --compare-sealed [--messages 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.bootstrap import configure_logging
from border_exchange.demo.sandbox import Sandbox, make_sandbox, open_agreements
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.partitioning import key_hash
from border_exchange.domain.policy import PolicyInput
from border_exchange.domain.recipients import SectionRecipients
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal
from border_exchange.interpreter import tune_garbage_collector
from border_exchange.services.router import (
    RETRY_BACKOFF_MS,
    PolicyView,
    Router,
    RouterTuning,
)

IDS = ("CAF", "COD", "SSD", "UGA")
ORIGIN = "CAF"
PARTITIONS = 3
PASSPHRASE = b"bench-passphrase"


SEALED = False
"""``--sealed``: every section sealed for the partners the agreements permit (and the origin)."""


def _sandbox(encryption: bool | None = None) -> Sandbox:
    pairs = [(a, b) for i, a in enumerate(IDS) for b in IDS[i + 1 :]]
    return make_sandbox(
        IDS, open_agreements(pairs), encryption=SEALED if encryption is None else encryption
    )


def _seal_many(
    box: Sandbox, count: int, origin: str = ORIGIN, sealed: bool | None = None
) -> list[tuple[bytes, bytes, str]]:
    """``count`` signed, encoded wanted-person alerts from ``origin``: (key, value, message id);
    ``sealed`` (``--sealed`` unless given): every section sealed for its recipients."""
    template = sample_alert(AlertType.WANTED_PERSON, origin=origin, language="en")
    template = type(template).model_validate(
        {**template.model_dump(), "expires_at": datetime.now(UTC) + timedelta(days=30)}
    )
    out = []
    now = datetime.now(UTC)
    recipients = None
    if SEALED if sealed is None else sealed:
        plan = SectionRecipients.of(box.agreements, box.trust).plan(
            PolicyInput(
                origin, template.alert_type, template.handling_code, template.operation, "x"
            ),
            now,
        )
        recipients = dict(plan.sections)
    for _ in range(count):
        envelope = seal(
            template,
            signing_key=box.keys[origin],
            key_id=box.key_ids[origin],
            message_id=uuid.uuid4().hex,
            issued_at=now,
            alert_id=uuid.uuid4().hex,
            recipients=recipients,
        )
        out.append(
            (
                envelope.header.alert_id.encode(),
                encode_envelope(envelope),
                envelope.header.message_id,
            )
        )
    return out


async def _create_topics(settings: KafkaSettings, extra: Sequence[str] = ()) -> None:
    names = [(naming.QUARANTINE_TOPIC, 3), (naming.AGREEMENTS_TOPIC, 1)]
    for p in IDS:
        names += [(naming.outbox_topic(p), PARTITIONS), (naming.audit_topic(p), PARTITIONS)]
        names += [(naming.feed_topic(p, q), PARTITIONS) for q in IDS if q != p]
    names += [(name, PARTITIONS) for name in extra]
    # The feed states the router writes beside every copy, compacted as provisioning makes them.
    compacted = [naming.feed_state_topic(p, q) for p in IDS for q in IDS if q != p]
    compacted += [name for name in extra if ".state." in name]
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, p, 1) for n, p in names if n not in compacted]
            + [
                NewTopic(n, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"})
                for n in compacted
            ]
        )
    finally:
        await admin.close()


async def _produce(
    settings: KafkaSettings, topic: str, records: Sequence[tuple[bytes, bytes, str]]
) -> None:
    producer = AIOKafkaProducer(
        **settings.client_kwargs(), acks="all", linger_ms=10, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for key, value, _ in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _decided_total(port: int) -> int:
    """Messages routed or quarantined so far, by the counters of the router's endpoint.

    The group's committed offset trails the audit chain by up to
    ``offset_commit_interval``, so the drain is read where operators read it. A batch
    is counted as it is routed, before its transaction commits: over a drain of tens
    of seconds that overstates the rate by one commit, tens of ms.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        body = (await reader.read()).decode()
    finally:
        writer.close()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in body.splitlines()
        if line.startswith(("bx_routed_total{", "bx_quarantined_total{"))
    )


async def passthrough(
    settings: KafkaSettings, source: str, sink: str, count: int, *, batched: bool = False
) -> float:
    """(a) read ``source`` and copy every record to ``sink`` in transactions; records per second.

    The consumer and the producers have the router's settings: the same batch size,
    ``read_committed``, one transactional producer per input partition with the same
    linger, batch size and retry backoff. ``batched`` copies each transaction's
    records with record batches as the router does, instead of one ``send`` each.
    """
    batch = RouterTuning().batch_size
    group = f"bench.passthrough.{uuid.uuid4().hex[:6]}"
    consumer = AIOKafkaConsumer(
        source,
        **settings.client_kwargs(),
        group_id=group,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch,
    )
    producers: dict[TopicPartition, AIOKafkaProducer] = {}
    await consumer.start()
    done = 0
    started = time.perf_counter()
    try:
        while done < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=batch)
            jobs = []
            for tp, records in batches.items():
                producer = producers.get(tp)
                if producer is None:
                    producer = AIOKafkaProducer(
                        **settings.client_kwargs(),
                        transactional_id=f"{group}.{tp.partition}",
                        acks="all",
                        linger_ms=0,
                        max_batch_size=512 * 1024,
                        retry_backoff_ms=RETRY_BACKOFF_MS,
                    )
                    await producer.start()
                    producers[tp] = producer
                copy = _copy_batched if batched else _copy
                jobs.append(copy(producer, group, tp, records, sink))
                done += len(records)
            await asyncio.gather(*jobs)
        return count / (time.perf_counter() - started)
    finally:
        for producer in producers.values():
            await producer.stop()
        await consumer.stop()


async def _copy(
    producer: AIOKafkaProducer, group: str, tp: TopicPartition, records: list[Any], sink: str
) -> None:
    async with producer.transaction():
        for record in records:
            await producer.send(sink, record.value, key=record.key, partition=tp.partition)
        await producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, group)


async def _copy_batched(
    producer: AIOKafkaProducer, group: str, tp: TopicPartition, records: list[Any], sink: str
) -> None:
    async with producer.transaction():
        batch = producer.create_batch()
        for record in records:
            if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                await producer.send_batch(batch, sink, partition=tp.partition)
                batch = producer.create_batch()
                batch.append(key=record.key, value=record.value, timestamp=None)
        await producer.send_batch(batch, sink, partition=tp.partition)
        await producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, group)


async def _audit_values(settings: KafkaSettings, count: int) -> list[bytes]:
    """Up to ``count`` audit records the router wrote in (b), to write again in (c)."""
    topic = naming.audit_topic(ORIGIN)
    consumer = AIOKafkaConsumer(
        topic,
        **settings.client_kwargs(),
        group_id=None,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        while len(values) < count:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                break
            values.extend(r.value for recs in batch.values() for r in recs if r.value)
    finally:
        await consumer.stop()
    return values[:count]


FANOUT_PARTNERS = ("COD", "SSD", "UGA")


async def fanout(
    settings: KafkaSettings,
    source: str,
    count: int,
    audit: Sequence[bytes],
    *,
    audit_each: bool = True,
    prefix: str = "bench.fanout",
) -> tuple[Drain, int]:
    """(c) what the router writes per message, without its checks; messages per second
    and the records written.

    Per input partition a task with its own transactional producer, as the router's
    workers: each transaction takes every batch queued while the last one committed,
    a partition with ``batch_size`` records queued is paused, and the group's offset
    joins a transaction once per ``offset_commit_interval``. Per message: the record's
    bytes to three partner topics and to their three state topics (the partition its key
    hashes to, the ``bx-source`` header) and an audit record of the router's own (from
    (b)) to the partition's audit topic, all sent in record batches per partition, every
    send acknowledged before the commit. Without ``audit_each``, one audit record per
    transaction instead of one per message (what fewer writes per message would save),
    to the topics named with ``prefix``.
    """
    tuning = RouterTuning()
    limit = tuning.batch_size
    group = f"{prefix}.{uuid.uuid4().hex[:6]}"
    feeds = [f"{prefix}.{p}" for p in FANOUT_PARTNERS]
    feeds += [f"{prefix}.state.{p}" for p in FANOUT_PARTNERS]
    audit_topic = f"{prefix}.audit"
    consumer = AIOKafkaConsumer(
        source,
        **settings.client_kwargs(),
        group_id=group,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=limit,
    )
    await consumer.start()
    queues: dict[TopicPartition, asyncio.Queue[list[Any]]] = {}
    queued: dict[TopicPartition, int] = {}
    tasks: list[asyncio.Task[None]] = []
    producers: list[AIOKafkaProducer] = []
    committed = 0
    written = 0

    async def send_grouped(
        producer: AIOKafkaProducer, outputs: list[tuple[str, int, bytes, bytes, list[Any]]]
    ) -> list[asyncio.Future[Any]]:
        groups: dict[tuple[str, int], list[tuple[bytes, bytes, list[Any]]]] = {}
        for topic, partition, key, value, headers in outputs:
            groups.setdefault((topic, partition), []).append((key, value, headers))
        futures = []
        for (topic, partition), records in groups.items():
            batch = producer.create_batch()
            for key, value, headers in records:
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=headers)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def work(tp: TopicPartition, producer: AIOKafkaProducer) -> None:
        nonlocal committed, written
        queue = queues[tp]
        offset_at = time.monotonic()
        seq = 0
        while True:
            records = list(await queue.get())
            while not queue.empty():
                records.extend(queue.get_nowait())
            queued[tp] -= len(records)
            if queued[tp] < limit:
                with contextlib.suppress(Exception):
                    consumer.resume(tp)
            outputs = []
            for record in records:
                hashed = key_hash(record.key) or 0
                headers = [("bx-source", f"{tp.topic}/{tp.partition}/{record.offset}".encode())]
                for feed in feeds:
                    outputs.append((feed, hashed % PARTITIONS, record.key, record.value, headers))
                if audit_each:
                    outputs.append(
                        (audit_topic, tp.partition, b"chain", audit[seq % len(audit)], [])
                    )
                    seq += 1
            if not audit_each:
                outputs.append((audit_topic, tp.partition, b"chain", audit[seq % len(audit)], []))
                seq += 1
            async with producer.transaction():
                due = time.monotonic() - offset_at >= tuning.offset_commit_interval
                if due:
                    await producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, group)
                    offset_at = time.monotonic()
                await asyncio.gather(*await send_grouped(producer, outputs))
            committed += len(records)
            written += len(outputs)

    started = time.perf_counter()
    ready: float | None = None
    before_ready = 0
    try:
        while committed < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=limit)
            for tp, records in batches.items():
                if tp not in queues:
                    producer = AIOKafkaProducer(
                        **settings.client_kwargs(),
                        transactional_id=f"{group}.{tp.partition}",
                        acks="all",
                        linger_ms=0,
                        max_batch_size=512 * 1024,
                        retry_backoff_ms=RETRY_BACKOFF_MS,
                    )
                    await producer.start()
                    producers.append(producer)
                    queues[tp], queued[tp] = asyncio.Queue(), 0
                    tasks.append(asyncio.create_task(work(tp, producer)))
                    if len(tasks) == PARTITIONS:
                        ready = time.perf_counter()  # every partition's producer started
                        before_ready = committed
                queues[tp].put_nowait(records)
                queued[tp] += len(records)
                if queued[tp] >= limit:
                    consumer.pause(tp)
            for task in tasks:
                if task.done():
                    task.result()
        ended = time.perf_counter()
        after = (count - before_ready) / (ended - (ready or started))
        return Drain(count / (ended - started), after), written
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for producer in producers:
            await producer.stop()
        await consumer.stop()


async def _records_written(settings: KafkaSettings, topics: Sequence[str]) -> int:
    """How many records ``topics`` hold (end offsets, transaction markers included)."""
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


def _fanout_topics(prefix: str) -> list[str]:
    """The topics ``fanout`` writes with ``prefix``: partner feeds, their states, audit."""
    topics = [f"{prefix}.{p}" for p in FANOUT_PARTNERS]
    return [*topics, *(f"{prefix}.state.{p}" for p in FANOUT_PARTNERS), f"{prefix}.audit"]


def _pattern(origin: str) -> str:
    """Each phase routes one origin's outbox, so no phase replays another's messages."""
    return rf"^bx\.{origin}\.outbox$"


def _router(settings: KafkaSettings, box: Sandbox, group: str, origin: str = ORIGIN) -> Router:
    view = PolicyView.build(box.trust, box.agreements)
    tuning = RouterTuning(group_id=group, checkpoint_interval=5.0, outbox_pattern=_pattern(origin))
    return Router(settings, view, box.hub_key, box.key_ids["hub"], tuning=tuning)


@dataclass(frozen=True)
class Drain:
    """Messages per second over a whole drain, and after the drainer's start."""

    rate: float
    """From the start of the drainer (its group join and producers included)."""
    routing_rate: float
    """The messages committed after it had its partitions and producers ready, over the
    time since (its start costs left out)."""


async def routed(
    settings: KafkaSettings,
    box: Sandbox,
    count: int,
    cpu: CpuUse | None = None,
    origin: str = ORIGIN,
) -> Drain:
    """(b) drain ``count`` records of ``origin``'s outbox through the router; msg/s."""
    group = f"{naming.ROUTER_GROUP}.bench.{uuid.uuid4().hex[:6]}"
    router = _router(settings, box, group, origin)
    stop = asyncio.Event()
    started = time.perf_counter()
    ready: float | None = None
    before_ready = 0
    task = asyncio.create_task(router.run(stop))
    # A worker's next offset moves once its transaction (offset included) has committed.
    while sum(worker.next_offset for worker in router.workers.values()) < count:
        if task.done():
            task.result()  # the router stopped: say why
            raise RuntimeError("the router stopped before routing every record")
        if ready is None and len(router.workers) == PARTITIONS:
            ready = time.perf_counter()  # fenced, rebuilt and routing every partition
            before_ready = sum(worker.next_offset for worker in router.workers.values())
        if cpu is not None:
            cpu.sample()
        await asyncio.sleep(0.02)
    ended = time.perf_counter()
    stop.set()
    await task
    return Drain(count / (ended - started), (count - before_ready) / (ended - (ready or started)))


def _router_process(
    settings: KafkaSettings,
    box: Sandbox,
    directory: Path,
    origin: str,
    group: str,
    metrics_port: int = 0,
) -> subprocess.Popen[bytes]:
    """``border-exchange router run`` for ``origin``'s outbox, as the router runs for real."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = box.write(directory, PASSPHRASE)
    config = {
        "kafka": {
            "bootstrap": settings.bootstrap,
            "security_protocol": settings.security_protocol,
            "username": settings.username,
            "password": settings.password,
        },
        "trust_store": str(paths["trust"]),
        "agreements": str(paths["agreements"]),
        "agreement_history": str(directory / "history"),
        "signing_key": str(paths["key:hub"]),
        "group_id": group,
        "metrics_port": metrics_port,
        "outbox_pattern": _pattern(origin),
    }
    (directory / "router.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "BX_KEY_PASSPHRASE": PASSPHRASE.decode()}
    with (directory / "router.log").open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "border_exchange",
                "router",
                "run",
                "--config",
                str(directory / "router.yaml"),
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=kafka_launcher.die_with_parent,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


WINDOW = 15.0
"""Seconds of the latency stream summarised together, to show the broker warming up."""


@dataclass(frozen=True)
class Window:
    """p50 and p99 ms of the messages published in ``WINDOW`` seconds from ``start``."""

    start: float
    p50: float
    p99: float


def _percentiles(
    keys: Sequence[bytes], sent: dict[bytes, float], arrived: dict[bytes, float]
) -> tuple[float, float, int]:
    """p50 and p99 ms from ``sent`` to ``arrived`` of ``keys``, and how many arrived."""
    lat = sorted((arrived[k] - sent[k]) * 1000 for k in keys if k in arrived)
    if not lat:
        return float("nan"), float("nan"), 0
    return statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))], len(lat)


async def latency(
    settings: KafkaSettings,
    box: Sandbox,
    rate: int,
    seconds: float,
    directory: Path,
    warmup: float = 0.0,
) -> tuple[float, float, int, list[Window]]:
    """p50 and p99 ms from publish to a partner feed at a steady ``rate`` per second.

    The router runs as its own process, as in production; this process publishes and
    receives. The stream runs ``warmup`` seconds before the ``seconds`` measured: a
    freshly started broker spends its first minutes compiling its transaction paths,
    on the same two cores (measured at this rate: its JIT compiler took about 68 s of
    CPU in the first 110 s of the stream, about 3 s a minute after that), and the
    router's latency would otherwise carry that. Also returned: p50 and p99 of every
    ``WINDOW`` seconds of the whole stream, warm-up included, so the curve shows.
    """
    group = f"{naming.ROUTER_GROUP}.bench.{uuid.uuid4().hex[:6]}"
    origin = "COD"
    feed = naming.feed_topic(ORIGIN, origin)
    consumer = AIOKafkaConsumer(
        feed,
        **settings.client_kwargs(),
        group_id=None,
        isolation_level="read_committed",
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    await consumer.seek_to_end()
    records = _seal_many(box, int(rate * (warmup + seconds)), origin)
    measured_from = int(rate * warmup)

    sent: dict[bytes, float] = {}
    measured: list[bytes] = []
    arrived: dict[bytes, float] = {}
    router = _router_process(settings, box, directory, origin, group)
    await asyncio.sleep(8)  # started, joined and assigned before the clock starts

    async def receive() -> None:
        # Every message is a new alert: the record key (its alert id) names it, and
        # this process spends no CPU decoding what it receives.
        while len(arrived) < len(records):
            batch = await consumer.getmany(timeout_ms=500)
            now = time.perf_counter()
            for recs in batch.values():
                for r in recs:
                    arrived[r.key] = now

    receiver = asyncio.create_task(receive())
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", linger_ms=0)
    await producer.start()
    start = time.perf_counter()
    for i, (key, value, _) in enumerate(records):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[key] = time.perf_counter()
        if i >= measured_from:
            measured.append(key)
        await producer.send(naming.outbox_topic(origin), value, key=key)
    await producer.flush()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receiver, 60)
    await producer.stop()
    _stop(router)
    await consumer.stop()
    windows = []
    for first in range(0, len(records), int(rate * WINDOW)):
        keys = [key for key, _, _ in records[first : first + int(rate * WINDOW)]]
        p50, p99, _ = _percentiles(keys, sent, arrived)
        windows.append(Window(first / rate, p50, p99))
    return (*_percentiles(measured, sent, arrived), windows)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def backlog_rss(
    settings: KafkaSettings, box: Sandbox, count: int, directory: Path
) -> tuple[list[int], float]:
    """Drain a backlog of ``count`` messages with ``router run``; RSS samples (kB) and rate."""
    origin = "SSD"
    group = f"{naming.ROUTER_GROUP}.bench.{uuid.uuid4().hex[:6]}"
    outbox = naming.outbox_topic(origin)
    for start in range(0, count, 20_000):
        await _produce(settings, outbox, _seal_many(box, min(20_000, count - start), origin))
    port = kafka_launcher.free_port()
    proc = _router_process(settings, box, directory, origin, group, metrics_port=port)
    samples: list[int] = []
    started = time.perf_counter()
    try:
        decided = 0
        while decided < count:
            samples.append(_rss_kb(proc.pid))
            await asyncio.sleep(0.5)
            if proc.poll() is not None:
                raise RuntimeError(f"router exited: see {directory / 'router.log'}")
            with contextlib.suppress(OSError):  # the endpoint is not up yet
                decided = await _decided_total(port)
        elapsed = time.perf_counter() - started
    finally:
        _stop(proc)
    return samples, count / elapsed


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _ticks(stat_path: str) -> float:
    """CPU seconds (user + system) in a ``/proc/.../stat`` file; 0 when it is gone."""
    try:
        fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _signature_threads_cpu() -> float:
    """CPU seconds of this process's signature threads alive now (``signature_batch``)."""
    return sum(
        _ticks(f"/proc/self/task/{thread.native_id}/stat")
        for thread in threading.enumerate()
        if thread.name.startswith("bx-signatures")
    )


@dataclass
class CpuUse:
    """Where the CPU of one phase went, per message: this process, its signature threads,
    the broker, and the phase's wall time (two cores: twice the wall is the machine)."""

    broker_pid: int
    started: tuple[float, float, float] = (0.0, 0.0, 0.0)
    signatures: float = 0.0
    """Signature threads' CPU, sampled while they live (they end with their workers)."""

    def begin(self) -> None:
        self.started = (
            time.process_time(),
            _ticks(f"/proc/{self.broker_pid}/stat"),
            time.perf_counter(),
        )
        self.signatures = 0.0

    def sample(self) -> None:
        self.signatures = max(self.signatures, _signature_threads_cpu())

    def report(self, name: str, messages: int) -> str:
        own, broker, wall = self.started
        per = 1e6 / messages
        own = (time.process_time() - own) * per
        broker = (_ticks(f"/proc/{self.broker_pid}/stat") - broker) * per
        wall = (time.perf_counter() - wall) * per
        return (
            f"    CPU per message in {name}: this process {own:.0f} µs (its signature threads "
            f"{self.signatures * per:.0f}), broker {broker:.0f} µs; wall {wall:.0f} µs "
            f"(cores busy {(own + broker) / wall:.2f} of 2)"
        )


def bare_verify_rate(box: Sandbox, seconds: float = 2.0) -> float:
    """Ed25519 verifications per second with the library the router uses (PyNaCl)."""
    key = box.keys[ORIGIN]
    message = os.urandom(300)
    signed = key.sign(message)
    verify = key.verify_key.verify
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(500):
            verify(message, signed.signature)
        count += 500
    return count / (time.perf_counter() - started)


SEALED_ORIGIN = "COD"
"""``--compare-sealed``: the origin whose outbox holds the sealed records (CAF's, the clear)."""


async def compare_sealed(
    settings: KafkaSettings, messages: int, rounds: int, broker_pid: int, same: bool = False
) -> None:
    """The router on the same wanted persons in clear (CAF's outbox) and sealed (COD's),
    drained in turn ``rounds`` times on one broker, so that both see the same machine.

    Each round publishes fresh alerts to both outboxes (a router that finds a message in
    its audit trail does not route it again) and starts a router on each in turn; its rate
    counts from the moment it routes every partition, past what earlier rounds routed. The
    CPU per message (this process and the broker) is less shaken by a busy machine than
    the rate. ``same``: both outboxes in clear (the two arms should then be equal)."""
    box = _sandbox(encryption=True)
    tune_garbage_collector()
    raw_in, raw_out = "bench.raw.in", "bench.raw.out"
    await _create_topics(settings, (raw_in, raw_out))
    print(f"sealing {rounds} x {messages} wanted-person alerts in clear and as many sealed ...")
    clear = [_seal_many(box, messages, ORIGIN, sealed=False) for _ in range(rounds)]
    sealed = [_seal_many(box, messages, SEALED_ORIGIN, sealed=not same) for _ in range(rounds)]
    await _produce(settings, raw_in, clear[0])
    await passthrough(settings, raw_in, raw_out, messages)  # the broker's warm-up
    sizes = [statistics.mean(len(v) for _, v, _ in r[0]) for r in (clear, sealed)]
    print(f"message size (mean): in clear {sizes[0]:.0f} bytes, sealed {sizes[1]:.0f} bytes")
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for turn in range(rounds):
        await _produce(settings, naming.outbox_topic(ORIGIN), clear[turn])
        await _produce(settings, naming.outbox_topic(SEALED_ORIGIN), sealed[turn])
        order = (ORIGIN, SEALED_ORIGIN) if turn % 2 == 0 else (SEALED_ORIGIN, ORIGIN)
        total = messages * (turn + 1)
        rate: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for origin in order:
            use = CpuUse(broker_pid)
            use.begin()
            rate[origin] = (await routed(settings, box, total, origin=origin)).routing_rate
            own, broker, _ = use.started
            cpu[origin] = (
                time.process_time() - own + _ticks(f"/proc/{broker_pid}/stat") - broker
            ) * (1e6 / messages)
        ratios.append(rate[SEALED_ORIGIN] / rate[ORIGIN])
        cpu_ratios.append(cpu[ORIGIN] / cpu[SEALED_ORIGIN])
        print(
            f"round {turn + 1}: (b) in clear {rate[ORIGIN]:,.0f} msg/s, "
            f"{cpu[ORIGIN]:,.0f} µs CPU per message; sealed {rate[SEALED_ORIGIN]:,.0f} msg/s, "
            f"{cpu[SEALED_ORIGIN]:,.0f} µs; sealed/clear {ratios[-1]:.2f} by rate, "
            f"{cpu_ratios[-1]:.2f} by CPU",
            flush=True,
        )
    print(
        f"sealed/clear, median of {rounds} rounds: {statistics.median(ratios):.2f} by rate, "
        f"{statistics.median(cpu_ratios):.2f} by CPU per message (router process and broker) "
        "(goal >= 0.9: at most 10 % slower)"
    )


def main(args: argparse.Namespace) -> None:
    """Start Kafka, run every measurement, stop Kafka."""
    configure_logging("WARNING")
    print(f"starting a local Kafka {kafka_launcher.KAFKA_VERSION} ...", flush=True)
    info = kafka_launcher.start_cluster(1)
    settings = KafkaSettings(
        info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
    )
    try:
        if args.compare_sealed:
            asyncio.run(
                compare_sealed(
                    settings, args.messages, args.rounds, info.nodes[0].pid, args.both_clear
                )
            )
        else:
            asyncio.run(measure(settings, args, info.nodes[0].pid))
    finally:
        kafka_launcher.stop_cluster(info, remove=True)


async def measure(settings: KafkaSettings, args: argparse.Namespace, broker_pid: int) -> None:
    """Every measurement, on the cluster of ``settings`` (its broker's process ``broker_pid``)."""
    box = _sandbox()
    # As ``router run`` does; (a) and (b) run in this process, under the same settings.
    tune_garbage_collector()
    raw_in, raw_out = "bench.raw.in", "bench.raw.out"
    fanout_topics = _fanout_topics("bench.fanout")
    await _create_topics(settings, (raw_in, raw_out, *fanout_topics, *_fanout_topics("bench.few")))
    print(f"sealing {args.messages} wanted-person alerts ...", flush=True)
    records = _seal_many(box, args.messages)
    size = statistics.mean(len(v) for _, v, _ in records)
    await _produce(settings, raw_in, records)
    await _produce(settings, naming.outbox_topic(ORIGIN), records)

    verify = bare_verify_rate(box)
    # A freshly started broker runs its first transactions several times slower than
    # later ones (its code is not compiled yet): an unmeasured pass-through first, so
    # that (a) is not measured on a cold broker and (b) on a warm one.
    warm = await passthrough(settings, raw_in, raw_out, len(records))
    a = await passthrough(settings, raw_in, raw_out, len(records))
    a_batched = await passthrough(settings, raw_in, raw_out, len(records), batched=True)
    b_cpu, c_cpu = CpuUse(broker_pid), CpuUse(broker_pid)
    b_cpu.begin()
    b_drain = await routed(settings, box, len(records), b_cpu)
    b_used = b_cpu.report("(b)", len(records))
    b = b_drain.rate
    audit = await _audit_values(settings, len(records))
    c_cpu.begin()
    c_drain, c_written = await fanout(settings, raw_in, len(records), audit)
    c_used = c_cpu.report("(c)", len(records))
    few_drain, _ = await fanout(
        settings, raw_in, len(records), audit, audit_each=False, prefix="bench.few"
    )
    c = c_drain.rate
    c_total = await _records_written(settings, fanout_topics)
    feeds = [naming.feed_topic(p, ORIGIN) for p in FANOUT_PARTNERS]
    # End offsets count transaction markers too: they are written records as well.
    b_copies = await _records_written(settings, feeds)
    states = [naming.feed_state_topic(p, ORIGIN) for p in FANOUT_PARTNERS]
    b_total = b_copies + await _records_written(
        settings, [*states, naming.audit_topic(ORIGIN), naming.QUARANTINE_TOPIC]
    )
    verify_after = bare_verify_rate(box)
    verify = (verify + verify_after) / 2
    print()
    print(f"message size (mean): {size:.0f} bytes, {len(records)} messages, 3 partitions")
    print(f"broker warm-up pass-through (not counted): {warm:,.0f} msg/s")
    print(f"(a) transactional pass-through: {a:,.0f} msg/s")
    print(f"    the same with record batches, as the router writes: {a_batched:,.0f} msg/s")
    print(f"(b) router, verify + policy + fan-out to 3: {b:,.0f} msg/s ({3 * b:,.0f} copies/s)")
    print(f"bare Ed25519 verify (PyNaCl): {verify:,.0f}/s")
    print(f"(c) bare transactional fan-out, the router's records, no checks: {c:,.0f} msg/s")
    print(f"ratio b/c: {b / c:.2f} (goal >= 0.9: the checks cost at most a tenth of the I/O)")
    print(b_used)
    print(c_used)
    print(
        f"    (c) with one audit record per transaction instead of per message: "
        f"{few_drain.rate:,.0f} msg/s ({few_drain.rate / c:.2f} of (c): what fewer writes "
        "per message would gain)"
    )
    print(
        f"    after each one's start (partitions and producers ready): (b) "
        f"{b_drain.routing_rate:,.0f}, (c) {c_drain.routing_rate:,.0f} msg/s, "
        f"b/c {b_drain.routing_rate / c_drain.routing_rate:.2f}"
    )
    delivered = 3 * len(records)
    print(
        f"records written per delivered copy, transaction markers included: router "
        f"{b_total / delivered:.2f} ({b_total:,} in feeds, feed states, audit trail and "
        f"quarantine for {delivered:,} copies, {b_copies - delivered:,} of them markers in "
        f"the feeds); "
        f"fan-out {c_total / delivered:.2f} ({c_written / delivered:.2f} without markers)"
    )
    print(f"ratio b/a: {b / a:.2f} (goal >= 0.5); b / batched pass-through: {b / a_batched:.2f}")
    print(f"ratio b/verify: {b / verify:.2f} (verification is the floor of the cost)")
    if args.throughput_only:
        return

    with tempfile.TemporaryDirectory(prefix="bx-bench-") as tmp:
        p50, p99, n, windows = await latency(
            settings, box, args.rate, args.seconds, Path(tmp), warmup=args.warmup
        )
    print(
        f"latency publish->feed at {args.rate}/s over {n} messages "
        f"(after {args.warmup:.0f} s at that rate): "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (goal p99 <= 100 ms)"
    )
    curve = ", ".join(f"{w.start:.0f} s {w.p50:.0f}/{w.p99:.0f}" for w in windows)
    print(f"    p50/p99 ms by {WINDOW:.0f} s from the stream's start: {curve}")

    with tempfile.TemporaryDirectory(prefix="bx-bench-") as tmp:
        samples, rate = await backlog_rss(settings, box, args.backlog, Path(tmp))
    start, peak, end = samples[0] / 1024, max(samples) / 1024, samples[-1] / 1024
    quarter = max(1, len(samples) // 4)
    early = max(samples[:quarter]) / 1024
    late = max(samples[-quarter:]) / 1024
    print(
        f"backlog of {args.backlog:,}: drained at {rate:,.0f} msg/s by 'router run'; "
        f"RSS start {start:.0f} MB, peak {peak:.0f} MB, end {end:.0f} MB; "
        f"first quarter {early:.0f} MB, last quarter {late:.0f} MB (goal < 300 MB and flat); "
        f"about {(end - early) * 1024 * 1024 / (0.75 * args.backlog):.0f} bytes more per alert "
        "after the first quarter"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--warmup", type=float, default=90.0, help="seconds at --rate before the measured ones"
    )
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="(a), (b), (c) and their ratios only: no latency, no backlog (a few runs in a row)",
    )
    parser.add_argument(
        "--sealed",
        action="store_true",
        help="every section sealed for its recipients (bench_sealing compares the CPU work)",
    )
    parser.add_argument(
        "--compare-sealed",
        action="store_true",
        help="only (b), in clear and sealed in turn on one broker, and their ratio",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="--compare-sealed: rounds of one of each"
    )
    parser.add_argument(
        "--both-clear",
        action="store_true",
        help="--compare-sealed with both arms in clear: how far apart two equal arms come",
    )
    arguments = parser.parse_args()
    SEALED = arguments.sealed
    main(arguments)
