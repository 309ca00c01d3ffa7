"""Commands that manage or lose a whole broker, through the installed command, on brokers
of their own: ``dev kafka start|status|stop``, ``provision`` (``--dry-run`` first) and
``post run`` reconnecting after a broker crash and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.hit_queue import HitQueue, SendState
from border_exchange.adapters.kafka_launcher import free_port
from border_exchange.adapters.kafka_probe import round_trip
from border_exchange.adapters.kafka_security import list_scram_users
from border_exchange.demo.sandbox import Sandbox, make_sandbox, open_agreements
from border_exchange.domain import naming
from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.hits import HitAction, report_on, seal_report
from border_exchange.domain.samples import sample_alert_data
from border_exchange.domain.trust import post_owner
from border_exchange.services.provisioner import read_secrets
from tests import cli
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, running
from tests.kafka.test_gateway_post_faults import OwnCluster, cluster
from tests.waiting import eventually

__all__ = ["cluster"]  # the module's broker fixture, shared with the gateway and post faults

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dev_kafka_start_status_and_stop(tmp_path: Path) -> None:
    directory, port = tmp_path / "kafka", free_port()
    started = cli.run("dev", "kafka", "start", "--dir", str(directory), "--port", str(port))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"127.0.0.1:{port}" in started.stdout
        assert "BX_KAFKA_BOOTSTRAP=" in (directory / "kafka.env").read_text()
        info = kafka_launcher.read_state(directory)
        assert info is not None
        assert cli.run("dev", "kafka", "status", "--dir", str(directory)).returncode == 0
    finally:
        stopped = cli.run("dev", "kafka", "stop", "--dir", str(directory))
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped 1 node(s)" in stopped.stdout
    assert not any(_alive(node.pid) for node in info.nodes)
    status = cli.run("dev", "kafka", "status", "--dir", str(directory))
    assert status.returncode == 1
    assert "not running" in status.stdout
    again = cli.run("dev", "kafka", "stop", "--dir", str(directory))
    assert (again.returncode, "nothing to stop" in again.stdout) == (0, True)


def crash_and_restart(own: OwnCluster) -> None:
    """Kill the broker as a crash would, start it again, and wait until it answers."""
    own.kill_and_restart()
    round_trip(own.info.admin_bootstrap, expected_brokers=1, timeout=120)


@pytest.fixture(scope="module")
def own(cluster: OwnCluster) -> OwnCluster:
    """The one-node cluster of these tests, which they may crash."""
    return cluster


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return make_sandbox(["CAF", "COD"], open_agreements([("CAF", "COD")]), posts={"COD": ["aru"]})


@pytest.fixture(scope="module")
def provisioned(own: OwnCluster, box: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of the sandbox's files, the cluster provisioned from them by the CLI."""
    directory = tmp_path_factory.mktemp("provisioned")
    paths = box.write(directory, b"cli-tests")
    admin = cli.kafka_config(own.admin, directory / "admin.yaml")
    secrets = directory / "credentials.yaml"
    argv = ["provision", "--trust", str(paths["trust"]), "--admin-config", str(admin)]
    argv += ["--secrets", str(secrets)]

    dry = cli.run(*argv, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "+ user COD.post.aru" in dry.stdout
    assert not secrets.exists()
    users = asyncio.run(list_scram_users(own.admin))
    assert naming.post_principal("COD", "aru") not in users  # the dry run changed nothing

    applied = cli.run(*argv)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert naming.post_principal("COD", "aru") in read_secrets(secrets)
    assert naming.post_principal("COD", "aru") in asyncio.run(list_scram_users(own.admin))

    again = cli.run(*argv, "--dry-run")
    assert again.returncode == 0
    assert "+ user" not in again.stdout  # the second run would change nothing
    return directory


def test_provision_dry_run_then_apply_then_nothing_left_to_do(provisioned: Path) -> None:
    assert (provisioned / "credentials.yaml").exists()


async def _deliver(own: OwnCluster, box: Sandbox, plate: str, copies: int) -> None:
    """Route a CAF vehicle notice with ``plate`` to COD with the project's router, until
    COD's feed of CAF holds ``copies`` copies."""
    ex = Exchange(KafkaCluster(admin=own.admin, info=own.info), box, ["CAF", "COD"])
    data = sample_alert_data(AlertType.VEHICLE_NOTICE, origin="CAF")
    data["sections"]["vehicle"]["plate"] = plate
    async with running(ex.router()):
        await ex.publish(ex.seal(parse_alert(data)))
        assert len(await ex.feed("COD", "CAF", expect=copies, wait=90)) == copies


def _queue_a_hit(own: OwnCluster, box: Sandbox, db: Path) -> bytes:
    """Queue, in the post's database, a hit report of COD's post aru; its signed bytes."""
    ex = Exchange(KafkaCluster(admin=own.admin, info=own.info), box, ["CAF", "COD"])
    alert = ex.seal(parse_alert(sample_alert_data(AlertType.WANTED_PERSON, origin="CAF")))
    owner, now = post_owner("COD", "aru"), datetime.now(UTC)
    report = report_on(
        alert.header,
        reporter="COD",
        post="aru",
        key_id=box.key_ids[owner],
        hit_at=now - timedelta(minutes=5),
        action=HitAction.OBSERVED,
        place="Aru",
        contact="+243 00 000 0000",
        now=now,
    )
    value = seal_report(report, box.keys[owner])
    with HitQueue(db) as queue:
        queue.queue(report, value)
    return value


def _sent(db: Path) -> bool:
    with HitQueue(db) as queue:
        return [hit.state for hit in queue.reports()] == [SendState.SENT]


async def test_post_run_reconnects_after_a_broker_crash_and_stops_on_sigterm(
    own: OwnCluster, box: Sandbox, provisioned: Path, tmp_path: Path
) -> None:
    post = naming.post_principal("COD", "aru")
    password = read_secrets(provisioned / "credentials.yaml")[post]
    config = cli.kafka_config(own.admin.as_user(post, password), tmp_path / "post.yaml")
    db, log = tmp_path / "aru.db", tmp_path / "post.log"
    value = _queue_a_hit(own, box, db)  # queued while the link was down, say
    process = cli.start(
        "post", "run", "--participant", "COD", "--post", "aru", "--db", str(db),
        "--trust", str(provisioned / "trust.yaml"), "--config", str(config),
        "--send-hits-every", "1", log=log,
    )  # fmt: skip

    def holds(plate: str) -> bool:
        check = cli.run("post", "check", "--db", str(db), "--plate", plate)
        return db.exists() and check.returncode == 0

    try:
        await _deliver(own, box, "BG 1111 A", 1)
        await eventually(lambda: holds("BG 1111 A"), within=90, every=1, what="the first alert")
        # The running post sent its queued hit report by itself, once, to its outbox.
        await eventually(lambda: _sent(db), within=90, every=1, what="the queued hit sent")
        outbox = await Exchange(KafkaCluster(own.admin, own.info), box, []).read(
            naming.outbox_topic("COD")
        )
        assert outbox.count(value) == 1
        await asyncio.to_thread(crash_and_restart, own)
        await _deliver(own, box, "BG 2222 B", 2)
        await eventually(
            lambda: holds("BG 2222 B"), within=120, every=1, what="the alert sent after the crash"
        )
        assert process.poll() is None, log.read_text()[-3000:]
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the post's log ends:\n{log.read_text()[-3000:]}") from exc
    finally:
        code = cli.stop(process)
    assert code == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    assert process.returncode != -signal.SIGKILL
