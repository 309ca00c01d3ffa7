"""HTTP gateway benchmark: POST /alerts from 50 concurrent clients against the Python API.

Starts its own one-node Kafka with the project's launcher and measures, in one run:

(a) the Python Gateway API, ``await gateway.publish(alert)`` from 50 concurrent tasks
    (one alert per call, the batch size of one POST; the gateway runs one transaction
    at a time, so the calls queue);
(b) ``border-exchange gateway serve`` as its own process, ``POST /alerts`` from 50
    concurrent HTTP clients on loopback (httpx, keep-alive, a bearer token each), with
    the latency of each request (202 means the outbox transaction committed); the
    server commits concurrent requests together (group commit);
(c) the Python API with the same group commit (``GroupCommit.publish`` from 50
    concurrent tasks): what (b) would be without HTTP, at the same group sizes.

All are bounded in count (``--alerts``) and in time (``--max-seconds``); the ratio b/a
is the goal (>= 0.7); b/c is the cost of HTTP itself.

Usage: python bench/bench_gateway_http.py [--alerts 3000] [--clients 50] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.gateway_store import GatewayStore
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.bootstrap import configure_logging
from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.naming import outbox_topic
from border_exchange.domain.samples import sample_alert_data
from border_exchange.services.gateway import Gateway
from border_exchange.services.group_commit import GroupCommit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gateway_server import ServerProcess, add_token, write_config  # the CLI process
from tests.kafka.test_gateway import KEY, trust_for

ORIGIN_A = "CAF"
ORIGIN_B = "COD"


async def _create_topics(settings: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(outbox_topic(o), 3, 1) for o in (ORIGIN_A, ORIGIN_B)])
    finally:
        await admin.close()


def _bodies(origin: str, count: int) -> list[dict[str, Any]]:
    return [sample_alert_data(AlertType.VEHICLE_NOTICE, origin=origin) for _ in range(count)]


async def python_api(
    settings: KafkaSettings, count: int, clients: int, max_seconds: float, grouped: bool
) -> tuple[float, int, list[int]]:
    """(a), or (c) when ``grouped``: alerts/s from ``clients`` concurrent tasks, the count,
    and the size of each group."""
    alerts = [parse_alert(b) for b in _bodies(ORIGIN_A, count + 20)]
    queue = list(reversed(alerts[20:]))
    done = 0
    sizes: list[int] = []
    async with Gateway(settings, ORIGIN_A, KEY, f"{ORIGIN_A}-1", trust_for(ORIGIN_A)) as gateway:
        group = GroupCommit(gateway, on_group=sizes.append)
        publish = group.publish if grouped else gateway.publish
        for alert in alerts[:20]:  # warm-up, not counted
            await gateway.publish(alert)
        started = time.perf_counter()
        deadline = started + max_seconds

        async def worker() -> None:
            nonlocal done
            while queue and time.perf_counter() < deadline:
                await publish(queue.pop())
                done += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return done / elapsed, done, sizes


async def http_api(
    url: str, tokens: list[str], count: int, max_seconds: float
) -> tuple[float, int, list[float]]:
    """(b): alerts/s and per-request latencies (s) of POST /alerts from one client per token."""
    bodies = [json.dumps(b).encode() for b in _bodies(ORIGIN_B, count)]
    queue = list(reversed(bodies))
    latencies: list[float] = []
    failures: dict[int, int] = {}

    async def client(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            await http.post("/alerts", content=queue.pop())  # connection set-up, not counted
            await barrier.wait()
            while queue and time.perf_counter() < deadline:
                body = queue.pop()
                sent = time.perf_counter()
                answer = await http.post("/alerts", content=body)
                if answer.status_code == 202:
                    latencies.append(time.perf_counter() - sent)
                else:
                    failures[answer.status_code] = failures.get(answer.status_code, 0) + 1

    barrier = asyncio.Barrier(len(tokens) + 1)
    deadline = float("inf")
    tasks = [asyncio.create_task(client(t)) for t in tokens]
    await barrier.wait()
    started = time.perf_counter()
    deadline = started + max_seconds
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    if failures:
        print(f"    non-202 answers: {failures}")
    return len(latencies) / elapsed, len(latencies), latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(settings: KafkaSettings, args: argparse.Namespace, work: Path) -> None:
    """Both measurements on the cluster of ``settings``."""
    await _create_topics(settings)
    config = write_config(
        work, settings, ORIGIN_B, rate_per_second=100_000, burst=100_000, publish_timeout=30
    )
    tokens = [add_token(config, "client-00")]
    store = GatewayStore(config.with_name("gateway.db"))  # the others without a process each
    tokens += [store.add_client(f"client-{i:02d}") for i in range(1, args.clients)]
    store.close()
    server = ServerProcess.start(config, tokens[0])
    try:
        b, b_count, latencies = await http_api(
            server.url, tokens, args.alerts + args.clients, args.max_seconds
        )
        groups = _server_groups(server.url, tokens[0])
    finally:
        server.stop()
    a, a_count, _ = await python_api(
        settings, args.alerts, args.clients, args.max_seconds, grouped=False
    )
    c, c_count, sizes = await python_api(
        settings, args.alerts, args.clients, args.max_seconds, grouped=True
    )
    print()
    print(f"{args.clients} concurrent clients, vehicle notices, one alert per call or request")
    print(f"(a) Python Gateway API (gateway.publish): {a:,.0f} alerts/s ({a_count} alerts)")
    print(
        f"(b) POST /alerts over HTTP (gateway serve): {b:,.0f} alerts/s ({b_count} alerts, "
        f"{groups})"
    )
    print(
        f"    latency per request: p50 {_p(latencies, 0.5):.1f} ms, "
        f"p99 {_p(latencies, 0.99):.1f} ms, mean {statistics.mean(latencies) * 1000:.1f} ms"
    )
    mean_group = statistics.mean(sizes) if sizes else 0.0
    print(
        f"(c) Python API with group commit (GroupCommit.publish): {c:,.0f} alerts/s "
        f"({c_count} alerts, {len(sizes)} transactions, {mean_group:.1f} alerts each)"
    )
    verdict = "met" if b / a >= 0.7 else "missed"
    print(f"ratio b/a: {b / a:.2f} (goal >= 0.7: {verdict})")
    print(f"ratio b/c: {b / c:.2f} (HTTP against the Python API at the same group commit)")


def _server_groups(url: str, token: str) -> str:
    """How many transactions the server ran, from its metrics."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("bx_gateway_http_groups_total", "bx_gateway_http_grouped_requests_total"):
            values[name] = float(value)
    groups = values.get("bx_gateway_http_groups_total", 0.0)
    requests = values.get("bx_gateway_http_grouped_requests_total", 0.0)
    each = requests / groups if groups else 0.0
    return f"{groups:.0f} transactions, {each:.1f} requests each"


def main(args: argparse.Namespace) -> None:
    """Start Kafka, measure, stop Kafka."""
    configure_logging("WARNING")
    print(f"starting a local Kafka {kafka_launcher.KAFKA_VERSION} ...", flush=True)
    info = kafka_launcher.start_cluster(1)
    settings = KafkaSettings(
        info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bx-bench-http-") as tmp:
            asyncio.run(measure(settings, args, Path(tmp)))
    finally:
        kafka_launcher.stop_cluster(info, remove=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=3000, help="alerts per measurement")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="bound of each run")
    main(parser.parse_args())
