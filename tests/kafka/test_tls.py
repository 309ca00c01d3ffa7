"""The TLS listeners: mutual TLS with the certificate's CN as principal, and SCRAM over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAuthorizationFailedError

from border_exchange.adapters import kafka_launcher
from border_exchange.adapters.kafka_launcher import ClusterInfo
from border_exchange.adapters.kafka_security import create_acls, upsert_scram_user
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.adapters.tls_ca import Issued, create_ca, issue_client_cert
from border_exchange.domain import naming
from border_exchange.domain.acl import AclOperation, topic_acl, user
from tests import cli

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A one-node cluster of the local launcher with its TLS listeners."""
    info = kafka_launcher.start_cluster(1, tmp_path_factory.mktemp("tls-kafka"), tls=True)
    try:
        yield info
    finally:
        kafka_launcher.stop_cluster(info, remove=True)


def _admin(info: ClusterInfo) -> KafkaSettings:
    return KafkaSettings(
        info.client_bootstrap, "SASL_PLAINTEXT", info.admin_user, info.admin_password
    )


async def _topics(info: ClusterInfo, *names: str) -> None:
    admin = AIOKafkaAdminClient(**_admin(info).client_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1) for name in names])
    finally:
        await admin.close()


async def _produce(settings: KafkaSettings, topic: str) -> None:
    producer = AIOKafkaProducer(**settings.client_kwargs(), request_timeout_ms=10000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"over tls")
    finally:
        await producer.stop()


async def test_mutual_tls_authenticates_the_certificates_cn_and_the_acls_apply(
    tls_cluster: ClusterInfo, tmp_path: Path
) -> None:
    assert tls_cluster.ca_file
    assert tls_cluster.tls_dir
    principal = naming.gateway_principal("TLA")
    await _topics(tls_cluster, naming.outbox_topic("TLA"), naming.outbox_topic("TLB"))
    await create_acls(
        _admin(tls_cluster),
        [topic_acl(user(principal), AclOperation.WRITE, naming.outbox_topic("TLA"))],
    )
    ca_dir = Path(tls_cluster.tls_dir)
    cert = issue_client_cert(Issued(ca_dir / "ca.pem", ca_dir / "ca-key.pem"), tmp_path, principal)
    mtls = KafkaSettings(
        tls_cluster.ssl_bootstrap,
        "SSL",
        ca_file=tls_cluster.ca_file,
        cert_file=str(cert.cert_file),
        key_file=str(cert.key_file),
    )
    await _produce(mtls, naming.outbox_topic("TLA"))
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(mtls, naming.outbox_topic("TLB"))


async def test_scram_over_tls_logs_in_with_the_provisioned_password(
    tls_cluster: ClusterInfo,
) -> None:
    assert tls_cluster.ca_file
    principal = naming.gateway_principal("TLC")
    await _topics(tls_cluster, naming.outbox_topic("TLC"))
    await upsert_scram_user(_admin(tls_cluster), principal, "tls-password-1")
    await create_acls(
        _admin(tls_cluster),
        [topic_acl(user(principal), AclOperation.WRITE, naming.outbox_topic("TLC"))],
    )
    sasl_ssl = KafkaSettings(
        tls_cluster.sasl_ssl_bootstrap,
        "SASL_SSL",
        principal,
        "tls-password-1",
        ca_file=tls_cluster.ca_file,
    )
    await _produce(sasl_ssl, naming.outbox_topic("TLC"))


def _refused(settings: KafkaSettings, directory: Path) -> tuple[int, str]:
    """Exit code and error output of ``provision --dry-run`` connecting with ``settings``."""
    trust = directory / "trust.yaml"
    trust.write_text("version: 1\nparticipants: []\n")
    admin = cli.kafka_config(settings, directory / "admin.yaml")
    result = cli.run(
        "provision", "--dry-run", "--trust", str(trust), "--admin-config", str(admin), timeout=120
    )
    return result.returncode, result.stderr


def test_a_client_that_does_not_know_the_brokers_ca_is_refused_by_the_command(
    tls_cluster: ClusterInfo, tmp_path: Path
) -> None:
    stranger = create_ca(tmp_path / "other-ca")
    code, err = _refused(
        KafkaSettings(
            tls_cluster.sasl_ssl_bootstrap,
            "SASL_SSL",
            tls_cluster.admin_user,
            tls_cluster.admin_password,
            ca_file=str(stranger.cert_file),
        ),
        tmp_path,
    )
    assert code == 1, err
    assert "Traceback" not in err
    assert f"cannot connect to Kafka at {tls_cluster.sasl_ssl_bootstrap}" in err
    assert "CERTIFICATE_VERIFY_FAILED" in err  # the reason, as the client logged it


def test_a_wrong_password_over_tls_is_refused_by_the_command(
    tls_cluster: ClusterInfo, tmp_path: Path
) -> None:
    assert tls_cluster.ca_file
    code, err = _refused(
        KafkaSettings(
            tls_cluster.sasl_ssl_bootstrap,
            "SASL_SSL",
            tls_cluster.admin_user,
            "not-the-password",
            ca_file=tls_cluster.ca_file,
        ),
        tmp_path,
    )
    assert code == 1, err
    assert "Traceback" not in err
    assert f"cannot connect to Kafka at {tls_cluster.sasl_ssl_bootstrap}" in err
    assert "Authentication failed" in err  # the broker's answer, as the client logged it
