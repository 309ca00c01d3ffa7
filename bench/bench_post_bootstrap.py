"""Benchmark of a new border post bootstrapping from a state topic: time and bytes read.

Run: ``.venv/bin/python bench/bench_post_bootstrap.py [--alerts N] [--updates N]``.
Starts a one-node broker of its own (with the launcher's ``COMPRESSED_CLOCK`` settings,
so the cleaner compacts within seconds), fills ``bx.COD.state.from.UGA`` (3 partitions,
configured as provisioning configures a state topic, gzip) with N signed alerts in
force plus U updates of some of them (a third each wanted persons, vehicle notices and
border incidents, with varied names, plates, VINs and document numbers, as in
``bench_post_lookup``: a name index is only as cheap as its distinct names), waits
until the cleaner has compacted the superseded versions away, then times a new
post's bootstrap (``StateStart``: read every state partition to its end, verify every
record's signature and digests, store it in SQLite with its search keys). Bytes read:
the size of the state partitions' log segments on the broker's disk, which the
bootstrap fetches from first offset to last (gzip batches, as on the wire), compared
with the bytes of the alerts in force (key + value of each alert's latest version,
uncompressed). Goals: under 60 s and at most 1.2 times those bytes; the exit code is 1
when either is missed. The machine may be shared: the CPU time of the bootstrap (this
process, and the worker process that checks the records, ``services.check_pool``; the
broker's is apart) and the load average are printed beside the wall-clock time.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import random
import resource
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
from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.catalog import AlertType, Operation, ParticipantKind
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.naming import feed_state_topic, feed_topic
from border_exchange.domain.provisioning import COMPRESSION
from border_exchange.domain.retention import DEFAULT_POLICY
from border_exchange.domain.samples import sample_alert_data
from border_exchange.domain.signing import seal
from border_exchange.domain.trust import Participant, PublicKey, TrustStore
from border_exchange.services.post import outcome_of
from border_exchange.services.post_state import StateStart

GOAL_SECONDS = 60.0
GOAL_RATIO = 1.2
KEY = SigningKey(bytes(range(32)))
TYPES = (AlertType.WANTED_PERSON, AlertType.VEHICLE_NOTICE, AlertType.BORDER_INCIDENT)
SYLLABLES = ["ka", "mbe", "lo", "ngo", "ta", "wa", "ni", "du", "se", "ré", "mu", "zi", "ba", "ko"]
GIVEN = ["Jean", "Pierre", "Désiré", "Peter", "John", "Mahamat", "Amina", "Grace", "Emmanuel"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def _plate(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return f"{''.join(rng.choices(letters, k=3))} {rng.randint(100, 9999)} {rng.choice(letters)}"


def _varied(alert_type: AlertType, number: int, rng: random.Random, now: datetime) -> AlertInput:
    """A sample alert of ``alert_type`` with its own names, plates, VIN and documents."""
    data = copy.deepcopy(_BASE[alert_type])
    sections = data["sections"]
    if alert_type is AlertType.WANTED_PERSON:
        identity = sections["identity"]
        identity["family_names"] = [_word(rng).upper()]
        identity["given_names"] = [rng.choice(GIVEN), _word(rng)]
        identity["aliases"] = [_word(rng)]
        sections["documents"]["documents"][0]["number"] = f"P{number:08d}"
    elif alert_type is AlertType.VEHICLE_NOTICE:
        sections["vehicle"]["plate"] = _plate(rng)
        sections["vehicle"]["vin"] = "".join(rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ0123456789", k=17))
    else:
        sections["involved"]["persons"] = [
            {"role": "SUSPECT", "name": f"{_word(rng).upper()} {rng.choice(GIVEN)}", "sex": "MALE"}
        ]
        sections["involved"]["vehicles"] = [{"plate": _plate(rng)}]
    data["expires_at"] = (now + timedelta(days=365)).isoformat()
    return parse_alert(data)


_BASE = {t: sample_alert_data(t, origin="UGA", language="en") for t in TYPES}


def _trust(now: datetime) -> TrustStore:
    key = PublicKey(
        "UGA", "UGA-1", bytes(KEY.verify_key), now - timedelta(days=1), now + timedelta(days=730)
    )
    uga = Participant("UGA", "Uganda", ParticipantKind.NATIONAL_SERVICE, "active", (), (key,))
    return TrustStore(MappingProxyType({"UGA": uga}))


def _records(alerts: int, updates: int, now: datetime) -> tuple[list[tuple[bytes, bytes]], int]:
    """Every state record to write (oldest first), and the bytes of the latest versions."""
    rng = random.Random(16)
    latest: dict[bytes, bytes] = {}
    records: list[tuple[bytes, bytes]] = []
    ids = [uuid.uuid4().hex for _ in range(alerts)]
    plan = [(alert_id, 1) for alert_id in ids] + [(ids[i], 2) for i in range(updates)]
    bodies = [_varied(TYPES[n % len(TYPES)], n, rng, now) for n in range(alerts)]
    for n, (alert_id, version) in enumerate(plan):
        operation = Operation.CREATE if version == 1 else Operation.UPDATE
        message = bodies[n % alerts].model_copy(update={"version": version, "operation": operation})
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


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended (the broker runs on)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
        began, cpu, worker = time.perf_counter(), time.process_time(), _children_cpu()
        done = await starter.run([feed])
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        worker = _children_cpu() - worker  # the checking process, ended by then
        load = os.getloadavg()
        active = len(store.active())
    stored = sum(d.applied.stored for d in done)
    read = sum(d.state_records for d in done)
    ratio = log_bytes / in_force
    print(f"alerts in force: {alerts}; state records written: {len(records) + 1}")
    print(f"state log on disk after compaction: {log_bytes:,} bytes (written: {written:,})")
    print(f"bytes of the alerts in force (key + value, uncompressed): {in_force:,}")
    print(f"bootstrap: {seconds:.1f} s, {read} records read, {stored} stored, {active} active")
    print(
        f"CPU time of the bootstrap: {cpu:.1f} s in the post's process, {worker:.1f} s in its "
        f"checking process; load average (1, 5, 15 min): {load}"
    )
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
