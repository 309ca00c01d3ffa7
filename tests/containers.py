"""A SASL/SCRAM Kafka broker in a container, for machines with a Docker engine.

The official ``apache/kafka`` image turns ``KAFKA_*`` variables into broker settings;
the client listener is published on the same host port it advertises, and the
administrator's SCRAM credential is added through the container's own tools.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from border_exchange.adapters.kafka_launcher import KAFKA_VERSION, free_port
from border_exchange.adapters.kafka_probe import round_trip
from border_exchange.adapters.kafka_settings import KafkaSettings

if TYPE_CHECKING:
    from tests.conftest import KafkaCluster


@contextmanager
def kafka_container() -> Iterator[KafkaCluster]:
    """Start a one-node broker container with an authorizer and a SCRAM listener."""
    from testcontainers.core.container import DockerContainer

    from tests.conftest import KafkaCluster

    client, plain = free_port(), free_port()
    password = secrets.token_urlsafe(18)
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_LISTENERS": f"ADMIN://0.0.0.0:{plain},CLIENT://0.0.0.0:{client},"
        "CONTROLLER://localhost:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"ADMIN://127.0.0.1:{plain},CLIENT://127.0.0.1:{client}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "ADMIN:PLAINTEXT,CLIENT:SASL_PLAINTEXT,"
        "CONTROLLER:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "ADMIN",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_SASL_ENABLED_MECHANISMS": "SCRAM-SHA-512",
        "KAFKA_LISTENER_NAME_CLIENT_SCRAM-SHA-512_SASL_JAAS_CONFIG": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "KAFKA_AUTHORIZER_CLASS_NAME": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "KAFKA_SUPER_USERS": "User:admin;User:ANONYMOUS",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    container = DockerContainer(f"apache/kafka:{KAFKA_VERSION}")
    for key, value in env.items():
        container = container.with_env(key, value)
    container = container.with_bind_ports(client, client).with_bind_ports(plain, plain)
    with container:
        deadline = time.monotonic() + 90
        while True:
            code, _ = container.exec(
                [
                    "/opt/kafka/bin/kafka-configs.sh", "--bootstrap-server", f"localhost:{plain}",
                    "--alter", "--entity-type", "users", "--entity-name", "admin",
                    "--add-config", f"SCRAM-SHA-512=[password={password}]",
                ]
            )  # fmt: skip
            if code == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the Kafka container did not accept the admin credential")
            time.sleep(1)
        round_trip(f"127.0.0.1:{plain}", expected_brokers=1, timeout=60)
        admin = KafkaSettings(f"127.0.0.1:{client}", "SASL_PLAINTEXT", "admin", password)
        yield KafkaCluster(admin=admin)
