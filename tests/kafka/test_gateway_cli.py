"""``publish`` and ``cancel`` on the command line, against a real broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from border_exchange.cli.main import main
from border_exchange.domain.catalog import AlertType, Operation
from border_exchange.domain.naming import outbox_topic
from border_exchange.domain.samples import sample_alert_data
from tests.conftest import KafkaCluster
from tests.gateway_server import PASSPHRASE, write_identity
from tests.kafka.test_gateway import outbox, participant

pytestmark = pytest.mark.kafka


def test_publish_is_all_or_nothing_unless_skip_invalid_and_cancel_follows(
    kafka: KafkaCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    origin = participant()
    asyncio.run(kafka.create_topic(name=outbox_topic(origin)))
    write_identity(tmp_path, origin)
    monkeypatch.setenv("BX_KEY_PASSPHRASE", PASSPHRASE)
    settings = kafka.admin
    monkeypatch.setenv("BX_KAFKA_BOOTSTRAP", settings.bootstrap)
    monkeypatch.setenv("BX_KAFKA_SECURITY_PROTOCOL", settings.security_protocol)
    monkeypatch.setenv("BX_KAFKA_USERNAME", settings.username or "")
    monkeypatch.setenv("BX_KAFKA_PASSWORD", settings.password or "")

    good = [sample_alert_data(t, origin=origin) for t in (AlertType.VEHICLE_NOTICE,) * 2]
    bad = sample_alert_data(AlertType.WANTED_PERSON, origin=origin)
    bad["sections"]["identity"]["date_of_birth"] = "17/04/1986"
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(a) for a in [good[0], bad, good[1]]) + "\n")
    common = [
        "--as",
        origin,
        "--key",
        str(tmp_path / "key.pem"),
        "--trust",
        str(tmp_path / "trust.yaml"),
    ]

    assert main(["publish", *common, str(batch)]) == 1
    err = capsys.readouterr().err
    assert "batch.jsonl:2: sections.identity.date_of_birth: Input should be a valid date" in err
    assert "nothing published" in err
    assert asyncio.run(outbox(kafka, origin)) == []

    report = tmp_path / "report.json"
    assert main(["publish", *common, "--skip-invalid", "--report", str(report), str(batch)]) == 1
    written = json.loads(report.read_text())
    assert len(written["published"]) == 2
    assert [r["location"].rsplit("/", 1)[-1] for r in written["rejected"]] == ["batch.jsonl:2"]
    alert_id = written["published"][0]["alert_id"]

    assert main(["cancel", *common, alert_id, "--reason", "vehicle recovered"]) == 0
    assert f"cancelled {alert_id} version 2" in capsys.readouterr().out
    messages = asyncio.run(outbox(kafka, origin))
    assert [m.header.operation for m in messages] == [
        Operation.CREATE,
        Operation.CREATE,
        Operation.CANCEL,
    ]
