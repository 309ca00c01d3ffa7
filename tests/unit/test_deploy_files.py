"""Deployment files: the compose file passes the schema check, the manifests say what they must."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.bootstrap import RouterConfig
from border_exchange.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
K8S = DEPLOY / "k8s"

needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (Debian: apt-get install docker-compose; .ci/run does)",
)


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BX_", "COMPOSE_"))}
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@needs_compose
def test_the_compose_file_passes_the_schema_check_with_the_example_environment() -> None:
    result = _compose("--env-file", str(ENV_EXAMPLE), "config", "-q")
    assert result.returncode == 0, result.stderr


@needs_compose
def test_the_compose_file_refuses_to_run_without_passwords(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = _compose("--env-file", str(empty), "config", "-q")
    assert result.returncode != 0
    assert "set BX_" in result.stderr


@needs_compose
def test_compose_runs_three_brokers_two_routers_a_gateway_and_a_post() -> None:
    result = _compose("--env-file", str(ENV_EXAMPLE), "config")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "provision",
        "router",
        "gateway",
        "post",
    }
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        env = services[name]["environment"]
        assert services[name]["image"] == "apache/kafka:4.4.0"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert services["router"]["deploy"]["replicas"] == 2
    assert services["router"]["command"][:2] == ["router", "run"]
    assert services["post"]["command"][:2] == ["post", "run"]
    # Only the brokers and the provisioning run reach the super user's listener.
    on_admin_network = {n for n, s in services.items() if "kafka-admin" in s["networks"]}
    assert on_admin_network == {"kafka-1", "kafka-2", "kafka-3", "provision"}


def test_the_routers_config_files_are_valid_router_configurations() -> None:
    router_manifest = {d["kind"]: d for d in _documents(K8S / "router.yaml")}
    configs = {
        "compose": yaml.safe_load((DEPLOY / "config" / "router.yaml").read_text()),
        "k8s": yaml.safe_load(router_manifest["ConfigMap"]["data"]["router.yaml"]),
    }
    for where, raw in configs.items():
        RouterConfig.model_validate({k: v for k, v in raw.items() if k != "kafka"})
        settings = KafkaSettings.from_mapping(raw["kafka"], {"BX_KAFKA_PASSWORD": "x"})
        assert settings.username == "hub.router", where
        assert raw["metrics_host"] == "0.0.0.0", where


def test_the_router_deployment_runs_two_replicas_with_secrets_from_strimzi() -> None:
    documents = {d["kind"]: d for d in _documents(K8S / "router.yaml")}
    deployment = documents["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["BX_KAFKA_PASSWORD"] == {"name": "hub.router", "key": "password"}
    assert env["BX_KEY_PASSPHRASE"]["name"] == "bx-hub-signing-key"
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["resources"]["limits"]["memory"]


def test_the_kafka_cluster_is_kraft_with_three_nodes_and_durable_settings() -> None:
    documents = {d["kind"]: d for d in _documents(K8S / "kafka.yaml")}
    pool, kafka = documents["KafkaNodePool"], documents["Kafka"]
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["transaction.state.log.replication.factor"] == 3
    assert config["transaction.state.log.min.isr"] == 2
    assert config["unclean.leader.election.enable"] is False
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple", "superUsers": ["admin"]}
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert all(lst["tls"] and lst["authentication"]["type"] == "scram-sha-512" for lst in listeners)


def test_the_generated_example_grants_the_gateway_of_caf_writes_to_its_outbox_only() -> None:
    users = {u["metadata"]["name"]: u for u in _documents(K8S / "generated" / "users.yaml")}
    acls = users["caf.gateway"]["spec"]["authorization"]["acls"]
    written = [
        a["resource"]
        for a in acls
        if a["resource"]["type"] == "topic" and "Write" in a["operations"]
    ]
    assert written == [
        {"type": "topic", "name": "bx.CAF.outbox", "patternType": "literal"},
        {"type": "topic", "name": "bx.CAF.outbox.state", "patternType": "literal"},
    ]
    topics = _documents(K8S / "generated" / "topics.yaml")
    assert {t["kind"] for t in topics} == {"KafkaTopic"}
    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == "bx" for t in topics)


def test_the_committed_example_is_what_the_command_generates_today(tmp_path: Path) -> None:
    args = ["deploy", "strimzi", "--trust", str(K8S / "example-trust.yaml"), "--cluster", "bx"]
    assert main([*args, "--namespace", "border-exchange", "--out", str(tmp_path)]) == 0
    for name in ("topics.yaml", "users.yaml"):
        assert filecmp.cmp(tmp_path / name, K8S / "generated" / name, shallow=False), (
            f"deploy/k8s/generated/{name} is stale: regenerate it with "
            "border-exchange deploy strimzi --trust deploy/k8s/example-trust.yaml --cluster bx "
            "--namespace border-exchange --out deploy/k8s/generated"
        )
