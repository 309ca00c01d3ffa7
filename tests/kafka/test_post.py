"""The border post on a real broker, fed as the router would feed it.

Records go straight to the partner feeds (``encode_envelope(redact(envelope, keep))``
keyed by alert id), the way the router writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from nacl.signing import SigningKey

from border_exchange.adapters.post_store import Outcome, PostStore
from border_exchange.domain.alerts import AlertInput, parse_alert
from border_exchange.domain.catalog import AlertType, Operation, ParticipantKind
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.naming import feed_topic
from border_exchange.domain.samples import sample_alert, sample_alert_data
from border_exchange.domain.signing import redact, seal
from border_exchange.domain.trust import Participant, PublicKey, TrustStore
from border_exchange.services.post import BorderPost, PostConfig
from tests.cancels import cancel_of as signed_cancel
from tests.clock import AheadClock
from tests.conftest import KafkaCluster
from tests.exchange import random_ids
from tests.exchange import running as in_background
from tests.waiting import eventually

pytestmark = pytest.mark.kafka

KEYS = {"UGA": SigningKey(bytes(range(32))), "SSD": SigningKey(bytes(range(1, 33)))}


def participant() -> str:
    return random_ids(1)[0]


def trust() -> TrustStore:
    now = datetime.now(UTC)
    day = timedelta(days=1)
    services = {}
    for origin, key in KEYS.items():
        public = PublicKey(origin, f"{origin}-1", bytes(key.verify_key), now - day, now + day)
        services[origin] = Participant(
            origin, origin, ParticipantKind.NATIONAL_SERVICE, "active", (), (public,)
        )
    return TrustStore(services)


def sealed(alert: AlertInput, alert_id: str, version: int = 1) -> Envelope:
    operation = Operation.CREATE if version == 1 else Operation.UPDATE
    message = alert.model_copy(update={"version": version, "operation": operation})
    return seal(
        message,
        signing_key=KEYS[alert.origin],
        key_id=f"{alert.origin}-1",
        message_id=f"{alert_id}-{version}",
        issued_at=datetime.now(UTC) - timedelta(minutes=5),
        alert_id=alert_id,
    )


def cancel_of(envelope: Envelope) -> Envelope:
    header = envelope.header
    return signed_cancel(
        envelope, KEYS[header.origin], "person arrested", f"{header.alert_id}-cancel"
    )


async def write(kafka: KafkaCluster, topic: str, envelopes: Iterable[Envelope | bytes]) -> None:
    """Write feed records as the router would."""
    producer = AIOKafkaProducer(**kafka.admin.client_kwargs(), acks="all")
    await producer.start()
    try:
        for item in envelopes:
            if isinstance(item, bytes):
                await producer.send_and_wait(topic, item, key=b"raw")
            else:
                value = encode_envelope(item)
                await producer.send_and_wait(topic, value, key=item.header.alert_id.encode())
    finally:
        await producer.stop()


def running(
    kafka: KafkaCluster, store: PostStore, config: PostConfig
) -> AbstractAsyncContextManager[BorderPost]:
    """The post of ``config`` on ``store``, run in the background for the block."""
    return in_background(BorderPost(kafka.admin, config, store, trust()), within=30)


def consumed(store: PostStore, topic: str, count: int) -> Callable[[], bool]:
    return lambda: store.offsets().get((topic, 0), 0) >= count


async def test_the_post_stores_verified_alerts_and_applies_cancel_and_expiry(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    me = participant()
    feed = await kafka.create_topic(name=feed_topic(me, "UGA"))
    wanted = sealed(sample_alert(AlertType.WANTED_PERSON, origin="UGA", language="en"), "wp-1")
    vehicle = sealed(sample_alert(AlertType.VEHICLE_NOTICE, origin="UGA", language="en"), "vn-1")
    data = sample_alert_data(AlertType.VEHICLE_NOTICE, origin="UGA")
    data["expires_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    data["sections"]["vehicle"]["plate"] = "UAX 123K"
    expiring = sealed(parse_alert(data), "vn-2")
    tampered_sections = list(vehicle.sections)
    tampered_sections[0] = replace(tampered_sections[0], content=b"\x00" * 40)
    tampered = replace(
        sealed(sample_alert(AlertType.VEHICLE_NOTICE, origin="UGA"), "vn-3"),
        sections=tuple(tampered_sections),
    )
    await write(
        kafka,
        feed,
        [
            redact(wanted, {"identity", "offence", "contact"}),  # documents, photo withheld
            vehicle,
            expiring,
            tampered,
            b"\xc3\x01not an envelope",
        ],
    )
    clock = AheadClock()
    store = PostStore.open(tmp_path / "post.db", clock=clock)
    async with running(kafka, store, PostConfig(me, "kasindi")) as post:
        await eventually(consumed(store, feed, 5))
        assert [a.alert_id for a in store.find_name("peter ladu")] == ["wp-1"]
        (alert,) = store.find_name("major wani")
        assert set(alert.sections) == {"identity", "offence", "contact"}
        assert {"documents", "photo"} <= set(alert.withheld)
        assert not store.find_document("R00934512")  # withheld: neither stored nor searchable
        assert store.find_plate("ssd-123-ab")
        assert store.find_plate("uax123k")
        assert not store.get("UGA", "vn-3")
        reasons = [r.reason for r in store.rejected()]
        assert len(reasons) == 2
        assert reasons[0].startswith("DIGEST_MISMATCH")

        await write(kafka, feed, [cancel_of(wanted)])
        await eventually(consumed(store, feed, 6))
        assert not store.find_name("peter ladu")
        clock.ahead = timedelta(hours=2)
        assert not store.find_plate("UAX 123K")
        assert store.find_plate("SSD 123 AB")
    assert store.status().last_sync is not None
    assert store.status().lag == 0
    # What it applied, as `post run --metrics-port` serves it.
    assert post.metrics.value("post_records_total", {"result": "stored"}) == 3
    assert post.metrics.value("post_records_total", {"result": "rejected"}) == 2
    assert post.metrics.value("post_records_total", {"result": "cancelled"}) == 1
    assert post.metrics.value("post_feed_lag", {"feed": f"{feed}/0"}) == 0
    assert post.metrics.value("post_apply_seconds") >= 2  # batches timed
    store.close()


async def test_a_crash_between_consume_and_store_loses_nothing_and_applies_nothing_twice(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    me = participant()
    feed = await kafka.create_topic(name=feed_topic(me, "SSD"))
    alerts = [
        sealed(sample_alert(AlertType.VEHICLE_NOTICE, origin="SSD", language="en"), f"v{i}")
        for i in range(20)
    ]
    await write(kafka, feed, alerts)
    config = PostConfig(me, "nimule")
    path = tmp_path / "post.db"

    def crash(_: Sequence[Outcome]) -> None:
        raise RuntimeError("power cut between consume and store")

    broken = PostStore.open(path, before_commit=crash)
    with pytest.raises(RuntimeError, match="power cut"):
        await BorderPost(kafka.admin, config, broken, trust()).run()
    broken.close()

    with PostStore.open(path) as store:
        # Only where the feed starts was stored (it has no state topic), no record.
        assert store.offsets() == {(feed, 0): 0}
        assert store.active() == []
        async with running(kafka, store, config) as post:
            await eventually(consumed(store, feed, 20))
        assert post.applied.stored == 20
        assert len(store.active()) == 20
        # A restart starts from the offsets in SQLite: nothing is applied again.
        async with running(kafka, store, config) as again:
            await write(
                kafka, feed, [sealed(sample_alert(AlertType.WANTED_PERSON, origin="SSD"), "w")]
            )
            await eventually(consumed(store, feed, 21))
        assert again.applied.stored == 1
        assert again.applied.stale == 0
        assert len(store.active()) == 21


async def test_from_limits_the_feeds_and_by_default_new_partners_are_picked_up(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    me = participant()
    uganda = await kafka.create_topic(name=feed_topic(me, "UGA"))
    await write(kafka, uganda, [sealed(sample_alert(AlertType.VEHICLE_NOTICE, origin="UGA"), "u1")])
    only_ssd = PostStore.open(tmp_path / "ssd.db")
    every = PostStore.open(tmp_path / "all.db")
    async with (
        running(kafka, only_ssd, PostConfig(me, "yei", ("SSD",), metadata_max_age_ms=1000)),
        running(kafka, every, PostConfig(me, "kasindi", metadata_max_age_ms=1000)),
    ):
        await eventually(consumed(every, uganda, 1))
        south_sudan = await kafka.create_topic(name=feed_topic(me, "SSD"))
        ssd_alert = sealed(sample_alert(AlertType.WANTED_PERSON, origin="SSD"), "s1")
        await write(kafka, south_sudan, [ssd_alert])
        await eventually(consumed(every, south_sudan, 1))
        await eventually(consumed(only_ssd, south_sudan, 1))
    assert {a.alert_id for a in every.active()} == {"u1", "s1"}
    assert {a.alert_id for a in only_ssd.active()} == {"s1"}
    assert {topic for topic, _ in only_ssd.offsets()} == {south_sudan}
    only_ssd.close()
    every.close()
