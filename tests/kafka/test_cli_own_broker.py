"""Commands that manage or lose a whole broker, through the installed command, on brokers
of their own: ``dev kafka start|status|stop``, ``provision`` (``--dry-run`` first) and
``post run`` reconnecting after a broker crash and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_launcher import ClusterInfo, free_port
from border_exchange.adapters.kafka_probe import round_trip
from border_exchange.adapters.kafka_security import list_scram_users
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain import naming
from border_exchange.domain.alerts import parse_alert
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.permitted import AGREEMENT_HEADER, reference_value
from border_exchange.domain.samples import sample_alert_data
from border_exchange.domain.signing import seal
from border_exchange.sandbox import Sandbox, make_sandbox, open_agreements
from border_exchange.services.provisioner import read_secrets
from tests import cli, clock
from tests.waiting import eventually

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


class OwnBroker:
    """A one-node launcher cluster these tests may crash; ``info`` follows restarts."""

    def __init__(self, info: ClusterInfo) -> None:
        self.info = info

    @property
    def admin(self) -> KafkaSettings:
        info = self.info
        return KafkaSettings(
            info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
        )

    def crash_and_restart(self) -> None:
        node = self.info.nodes[0]
        kafka_launcher.kill_node(node)
        self.info = kafka_launcher.restart_node(self.info, node)
        round_trip(self.info.admin_bootstrap, expected_brokers=1, timeout=120)


@pytest.fixture(scope="module")
def own() -> Iterator[OwnBroker]:
    broker = OwnBroker(kafka_launcher.start_cluster(1))
    try:
        yield broker
    finally:
        kafka_launcher.stop_cluster(broker.info, remove=True)


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return make_sandbox(["CAF", "COD"], open_agreements([("CAF", "COD")]), posts={"COD": ["aru"]})


@pytest.fixture(scope="module")
def provisioned(own: OwnBroker, box: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
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


async def _deliver(own: OwnBroker, box: Sandbox, plate: str) -> None:
    """Write a CAF vehicle notice with ``plate`` into COD's feed of CAF, as the router would."""
    data = sample_alert_data(AlertType.VEHICLE_NOTICE, origin="CAF")
    data["sections"]["vehicle"]["plate"] = plate
    envelope = seal(
        parse_alert(data),
        signing_key=box.keys["CAF"],
        key_id=box.key_ids["CAF"],
        message_id=f"cli-{plate}",
        issued_at=clock.now(),
    )
    agreements = box.agreements
    reference = reference_value("CAF-COD", agreements.by_id("CAF-COD").content_digest())
    producer = AIOKafkaProducer(**own.admin.client_kwargs(), acks="all")
    await producer.start()
    try:
        # The signed agreement set the copy names, where the router keeps it.
        await producer.send_and_wait(
            naming.AGREEMENTS_TOPIC, agreements.canonical_bytes(), key=agreements.digest.encode()
        )
        await producer.send_and_wait(
            naming.feed_topic("COD", "CAF"),
            encode_envelope(envelope),
            key=envelope.header.alert_id.encode(),
            headers=[(AGREEMENT_HEADER, reference)],
        )
    finally:
        await producer.stop()


async def test_post_run_reconnects_after_a_broker_crash_and_stops_on_sigterm(
    own: OwnBroker, box: Sandbox, provisioned: Path, tmp_path: Path
) -> None:
    post = naming.post_principal("COD", "aru")
    password = read_secrets(provisioned / "credentials.yaml")[post]
    config = cli.kafka_config(own.admin.as_user(post, password), tmp_path / "post.yaml")
    db, log = tmp_path / "aru.db", tmp_path / "post.log"
    process = cli.start(
        "post", "run", "--participant", "COD", "--post", "aru", "--db", str(db),
        "--trust", str(provisioned / "trust.yaml"), "--config", str(config), log=log,
    )  # fmt: skip

    def holds(plate: str) -> bool:
        check = cli.run("post", "check", "--db", str(db), "--plate", plate)
        return db.exists() and check.returncode == 0

    try:
        await _deliver(own, box, "BG 1111 A")
        await eventually(lambda: holds("BG 1111 A"), within=90, every=1, what="the first alert")
        await asyncio.to_thread(own.crash_and_restart)
        await _deliver(own, box, "BG 2222 B")
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
