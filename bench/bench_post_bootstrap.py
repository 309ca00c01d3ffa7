"""Benchmark of a new border post bootstrapping from a state topic: time and bytes read.

Run: ``.venv/bin/python bench/bench_post_bootstrap.py [--alerts N] [--updates N]``.
Starts a one-node broker of its own (with the launcher's ``COMPRESSED_CLOCK`` settings,
so the cleaner compacts within seconds), fills ``bx.COD.state.from.UGA`` (3 partitions,
configured as provisioning configures a state topic, gzip) with N signed alerts in
force plus U updates of some of them, waits until the cleaner has compacted the
superseded versions away, then times a new post's bootstrap (``StateStart``: read
every state partition to its end, verify every record's signature and digests, store
it in SQLite with its search keys). Bytes read: the size of the state partitions'
log segments on the broker's disk, which the bootstrap fetches from first offset to
last (gzip batches, as on the wire), compared with the bytes of the alerts in force
(key + value of each alert's latest version, uncompressed). Goals: under 60 s and at
most 1.2 times those bytes; the exit code is 1 when either is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from nacl.signing import SigningKey

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.post_store import PostStore
from border_exchange.domain.catalog import AlertType, Operation, ParticipantKind
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.naming import feed_state_topic, feed_topic
from border_exchange.domain.provisioning import COMPRESSION
from border_exchange.domain.retention import DEFAULT_POLICY
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal
from border_exchange.domain.trust import Participant, PublicKey, TrustStore
from border_exchange.services.post import outcome_of
from border_exchange.services.post_state import StateStart

GOAL_SECONDS = 60.0
GOAL_RATIO = 1.2
KEY = SigningKey(bytes(range(32)))
TYPES = (AlertType.WANTED_PERSON, AlertType.VEHICLE_NOTICE, AlertType.BORDER_INCIDENT)


def _trust(now: datetime) -> TrustStore:
    key = PublicKey(
        "UGA", "UGA-1", bytes(KEY.verify_key), now - timedelta(days=1), now + timedelta(days=730)
    )
    uga = Participant("UGA", "Uganda", ParticipantKind.NATIONAL_SERVICE, "active", (), (key,))
    return TrustStore(MappingProxyType({"UGA": uga}))


def _records(alerts: int, updates: int, now: datetime) -> tuple[list[tuple[bytes, bytes]], int]:
    """Every state record to write (oldest first), and the bytes of the latest versions."""
    templates = [sample_alert(t, origin="UGA", language="en") for t in TYPES]
    latest: dict[bytes, bytes] = {}
    records: list[tuple[bytes, bytes]] = []
    ids = [uuid.uuid4().hex for _ in range(alerts)]
    plan = [(alert_id, 1) for alert_id in ids] + [(ids[i], 2) for i in range(updates)]
    for n, (alert_id, version) in enumerate(plan):
        template = templates[n % len(templates)]
        operation = Operation.CREATE if version == 1 else Operation.UPDATE
        message = template.model_copy(
            update={
                "version": version,
                "operation": operation,
                "expires_at": now + timedelta(days=365),
            }
        )
        envelope = seal(
            message,
            signing_key=KEY,
            key_id="UGA-1",
            message_id=f"{alert_id}-{version}",
            issued_at=now,
            alert_id=alert_id,
        )
        key, value = alert_id.encode(), encode_envelope(envelope)
        records.append((key, value))
        latest[key] = value
    return records, sum(len(k) + len(v) for k, v in latest.items())


async def _fill(settings: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        **settings.client_kwargs(), acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _log_bytes(data: Path, topic: str) -> int:
    return sum(f.stat().st_size for p in range(3) for f in (data / f"{topic}-{p}").glob("*.log"))


async def _bench(info: kafka_launcher.ClusterInfo, alerts: int, updates: int) -> int:
    now = datetime.now(UTC)
    settings = KafkaSettings(
        info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
    )
    feed, state = feed_topic("COD", "UGA"), feed_state_topic("COD", "UGA")
    configs = {
        **DEFAULT_POLICY.state_configs(),
        "compression.type": COMPRESSION,
        "segment.ms": "2000",
        "min.cleanable.dirty.ratio": "0.01",
    }
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(feed, 3, 1, topic_configs={"compression.type": COMPRESSION}),
                NewTopic(state, 3, 1, topic_configs=configs),
            ]
        )
    finally:
        await admin.close()
    started = time.perf_counter()
    records, in_force = _records(alerts, updates, now)
    print(f"sealed {len(records)} records in {time.perf_counter() - started:.1f} s")
    await _fill(settings, state, records)
    data = Path(info.nodes[0].data_dir) / "data"
    # One more record after segment.ms closes the last segment, then the cleaner runs.
    await asyncio.sleep(2.5)
    await _fill(settings, state, [records[-1]])
    written = _log_bytes(data, state)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and updates:
        await asyncio.sleep(2)
        if _log_bytes(data, state) < written:
            await asyncio.sleep(3)  # let the cleaner finish every partition
            break
    log_bytes = _log_bytes(data, state)
    with (
        tempfile.TemporaryDirectory() as directory,
        PostStore.open(Path(directory) / "post.db") as store,
    ):
        starter = StateStart(settings, "COD", store, _trust(now), outcome_of)
        began = time.perf_counter()
        done = await starter.run([feed])
        seconds = time.perf_counter() - began
        active = len(store.active())
    stored = sum(d.applied.stored for d in done)
    read = sum(d.state_records for d in done)
    ratio = log_bytes / in_force
    print(f"alerts in force: {alerts}; state records written: {len(records) + 1}")
    print(f"state log on disk after compaction: {log_bytes:,} bytes (written: {written:,})")
    print(f"bytes of the alerts in force (key + value, uncompressed): {in_force:,}")
    print(f"bootstrap: {seconds:.1f} s, {read} records read, {stored} stored, {active} active")
    print(f"bytes read / bytes in force: {ratio:.2f} (goal <= {GOAL_RATIO})")
    print(f"time goal < {GOAL_SECONDS:.0f} s: {'met' if seconds < GOAL_SECONDS else 'MISSED'}")
    ok = seconds < GOAL_SECONDS and ratio <= GOAL_RATIO and active == alerts
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=20_000)
    args = parser.parse_args()
    # The launcher waits for the broker with an event loop of its own: started outside ours.
    info = kafka_launcher.start_cluster(1, overrides=kafka_launcher.COMPRESSED_CLOCK)
    try:
        return asyncio.run(_bench(info, args.alerts, args.updates))
    finally:
        kafka_launcher.stop_cluster(info, remove=True)


if __name__ == "__main__":
    raise SystemExit(main())
