"""``audit replay`` and ``audit disclosures`` through the installed command, on a routed
period: exit 0 and CLEAN, then exit 1 naming the violation, in the output and the report."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from border_exchange.demo.sandbox import make_sandbox, open_agreements, trust_store_yaml
from border_exchange.domain import naming
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from tests import cli, clock
from tests.conftest import KafkaCluster
from tests.exchange import make_exchange, running

pytestmark = pytest.mark.kafka


async def test_replay_and_disclosures_exit_0_on_a_clean_period_and_1_on_a_forged_copy(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    started = clock.now() - timedelta(minutes=1)
    ex = await make_exchange(kafka, 2, open_agreements([("P0", "P1")]))
    a, b = ex.ids
    paths = ex.sandbox.write(tmp_path, b"audit-cli")
    envelope = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    async with running(ex.router()):
        await ex.publish(envelope)
        assert len(await ex.feed(b, a, expect=1)) == 1
    config = cli.kafka_config(ex.settings, tmp_path / "auditor.yaml")
    window = ["--from", clock.iso(started), "--to", clock.iso(clock.days(1))]
    common = [*window, "--trust", str(paths["trust"]), "--config", str(config)]
    report = tmp_path / "report.json"

    # The cluster is shared: replay what a (and with it b, its partner) sent or received.
    replay = ["audit", "replay", *common, "--participant", a, "--report", str(report), "--quiet"]
    clean = cli.run(*replay)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert cli.summary(clean.stdout).endswith(": CLEAN"), clean.stdout
    assert json.loads(report.read_text())["verdict"] == "CLEAN"

    shown = cli.run("audit", "disclosures", *common, "--participant", a, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    disclosures = json.loads(shown.stdout)["disclosures"]
    assert [(d["recipient"], d["message_id"]) for d in disclosures] == [
        (b, envelope.header.message_id)
    ]

    # A copy nobody routed: a validly signed alert written straight into b's feed.
    forged = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
    producer = AIOKafkaProducer(**ex.settings.client_kwargs())
    await producer.start()
    try:
        await producer.send_and_wait(
            naming.feed_topic(b, a), encode_envelope(forged), key=forged.header.alert_id.encode()
        )
    finally:
        await producer.stop()

    dirty = cli.run(*replay)
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert cli.summary(dirty.stdout).endswith(": 1 VIOLATION(S)"), dirty.stdout
    written = json.loads(report.read_text())
    assert written["verdict"] == "VIOLATIONS"
    (violation,) = written["violations"]
    assert violation["code"] == "FEED_UNAUTHORISED"
    assert violation["topic"] == naming.feed_topic(b, a)


def test_bad_options_exit_1_or_2_with_the_reason(tmp_path: Path) -> None:
    trust = tmp_path / "trust.yaml"
    naive = cli.run(
        "audit", "replay", "--from", "2026-01-01T00:00:00", "--to", clock.iso(clock.now()),
        "--trust", str(trust),
    )  # fmt: skip
    assert naive.returncode == 1
    assert "--from: give a time zone" in naive.stderr
    backwards = cli.run(
        "audit", "disclosures", "--participant", "CAF", "--from", clock.iso(clock.now()),
        "--to", clock.iso(clock.days(-1)), "--trust", str(trust),
    )  # fmt: skip
    assert backwards.returncode == 1
    assert "--to must be after --from" in backwards.stderr
    missing = cli.run("audit", "disclosures", "--from", "x", "--to", "y", "--trust", str(trust))
    assert missing.returncode == 2  # --participant is required


def test_replay_refuses_a_trust_store_without_governance_before_reading_anything(
    tmp_path: Path,
) -> None:
    box = make_sandbox(["CAF", "COD"], open_agreements([("CAF", "COD")]))
    ungoverned = tmp_path / "trust.yaml"
    ungoverned.write_text(trust_store_yaml(box.trust))  # no serial, window or signatures
    governed = tmp_path / "governed.yaml"
    governed.write_text(box.trust_yaml())
    window = ["--from", clock.iso(clock.days(-1)), "--to", clock.iso(clock.now())]
    # No --config: nothing is read from Kafka before the stores are checked.
    for stores in ([ungoverned], [governed, ungoverned]):
        trusts = [arg for path in stores for arg in ("--trust", str(path))]
        refused = cli.run("audit", "replay", *window, *trusts)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"{ungoverned}: refused: the store is not governed" in refused.stderr
