"""Strimzi resources: a KafkaTopic per topic, a KafkaUser per principal with exactly its ACLs."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from border_exchange.cli.main import main
from border_exchange.demo.sandbox import make_sandbox, open_agreements, trust_store_yaml
from border_exchange.domain.acl import AclBinding, AclOperation, PatternType, ResourceType
from border_exchange.domain.catalog import ParticipantKind
from border_exchange.domain.provisioning import desired_topics
from border_exchange.domain.strimzi import kafka_topics, kafka_users, kube_name, strimzi_acls
from border_exchange.domain.trust import Hub, Participant, TrustStore
from border_exchange.errors import ValidationError


def _participant(pid: str, status: str = "active", posts: tuple[str, ...] = ()) -> Participant:
    return Participant(pid, pid, ParticipantKind.NATIONAL_SERVICE, status, posts, ())


def _trust(*participants: Participant) -> TrustStore:
    return TrustStore(MappingProxyType({p.id: p for p in participants}), Hub((), ("oversight",)))


TRUST = _trust(
    _participant("CAF", posts=("bangui",)),
    _participant("COD", posts=("kasindi",)),
    _participant("SSD", status="suspended", posts=("nimule",)),
)


def _users() -> dict[str, dict[str, Any]]:
    return {u["metadata"]["name"]: u for u in kafka_users(TRUST, "bx", "border-exchange")}


def _rules(user: dict[str, Any], operation: str, kind: str) -> set[tuple[str, str]]:
    """(name, patternType) of every resource of ``kind`` the user may do ``operation`` on."""
    return {
        (rule["resource"]["name"], rule["resource"]["patternType"])
        for rule in user["spec"]["authorization"]["acls"]
        if rule["resource"]["type"] == kind and operation in rule["operations"]
    }


def test_the_gateway_of_caf_may_write_its_outbox_only() -> None:
    gateway = _users()["caf.gateway"]
    assert _rules(gateway, "Write", "topic") == {
        ("bx.CAF.outbox", "literal"),
        ("bx.CAF.outbox.state", "literal"),
    }
    assert _rules(gateway, "Read", "topic") == {
        ("bx.CAF.outbox", "literal"),
        ("bx.CAF.outbox.state", "literal"),
        ("bx.CAF.from.", "prefix"),
        ("bx.CAF.hits", "literal"),
        ("bx.CAF.notices", "literal"),
    }
    assert gateway["spec"]["authentication"] == {"type": "scram-sha-512"}
    assert gateway["metadata"]["annotations"]["border-exchange/principal"] == "CAF.gateway"


def test_a_post_reads_its_services_feeds_and_hits_and_writes_only_its_outbox() -> None:
    post = _users()["cod.post.kasindi"]
    assert _rules(post, "Read", "topic") == {
        ("bx.COD.from.", "prefix"),
        ("bx.COD.state.from.", "prefix"),
        ("bx.hub.agreements", "literal"),
        ("bx.COD.hits", "literal"),
    }
    assert _rules(post, "Read", "group") == {("bx.COD.post.kasindi", "literal")}
    assert _rules(post, "Write", "topic") == {("bx.COD.outbox", "literal")}


def test_the_router_reads_outboxes_and_writes_feeds_never_outboxes() -> None:
    router = _users()["hub.router"]
    written = _rules(router, "Write", "topic")
    assert ("bx.CAF.from.", "prefix") in written
    assert not any(name.endswith(".outbox") for name, _ in written)
    assert ("bx.CAF.outbox", "literal") in _rules(router, "Read", "topic")


def test_a_suspended_participant_has_no_user_but_the_hub_keeps_reading_it() -> None:
    users = _users()
    assert not any(name.startswith("ssd.") for name in users)
    assert ("bx.SSD.outbox", "literal") in _rules(users["hub.router"], "Read", "topic")
    assert set(users) == {
        "caf.gateway",
        "caf.post.bangui",
        "cod.gateway",
        "cod.post.kasindi",
        "hub.auditor.oversight",
        "hub.router",
    }


def test_acl_rules_group_operations_by_resource() -> None:
    rules = strimzi_acls(
        [
            AclBinding(ResourceType.TOPIC, "t", PatternType.LITERAL, "User:x", AclOperation.WRITE),
            AclBinding(ResourceType.TOPIC, "t", PatternType.LITERAL, "User:x", AclOperation.READ),
            AclBinding(
                ResourceType.CLUSTER,
                "kafka-cluster",
                PatternType.LITERAL,
                "User:x",
                AclOperation.IDEMPOTENT_WRITE,
            ),
        ]
    )
    assert rules == [
        {
            "resource": {"type": "cluster"},
            "operations": ["IdempotentWrite"],
            "host": "*",
            "type": "allow",
        },
        {
            "resource": {"type": "topic", "name": "t", "patternType": "literal"},
            "operations": ["Read", "Write"],
            "host": "*",
            "type": "allow",
        },
    ]


def test_an_operation_strimzi_cannot_express_is_refused() -> None:
    binding = AclBinding(
        ResourceType.TOPIC, "t", PatternType.LITERAL, "User:x", AclOperation.CREATE_TOKENS
    )
    with pytest.raises(ValidationError, match="CREATE_TOKENS"):
        strimzi_acls([binding])


def test_every_topic_keeps_its_exact_name_replication_and_configs() -> None:
    resources = kafka_topics(TRUST, "bx", brokers=3)
    specs = desired_topics(TRUST, 3)
    assert sorted(r["spec"]["topicName"] for r in resources) == sorted(specs)
    for resource in resources:
        spec = specs[resource["spec"]["topicName"]]
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "bx"
        assert resource["spec"]["replicas"] == 3
        assert resource["spec"]["partitions"] == spec.partitions
        assert resource["spec"]["config"]["min.insync.replicas"] == "2"


def test_kubernetes_names_are_lower_case_and_refuse_what_cannot_be_one() -> None:
    assert kube_name("bx.UN-MONUSCO.from.CAF") == "bx.un-monusco.from.caf"
    with pytest.raises(ValidationError, match="Kubernetes"):
        kube_name("bx.CAF/outbox")


def test_the_command_writes_topics_and_users_for_a_small_trust_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = make_sandbox(
        ["CAF", "COD"], open_agreements([("CAF", "COD")]), posts={"COD": ["aru"]}
    )
    trust_file = tmp_path / "trust.yaml"
    trust_file.write_text(trust_store_yaml(sandbox.trust))
    out = tmp_path / "generated"
    args = ["deploy", "strimzi", "--trust", str(trust_file), "--cluster", "bx", "--out", str(out)]
    assert main([*args, "--namespace", "border-exchange"]) == 0
    topics = list(yaml.safe_load_all((out / "topics.yaml").read_text()))
    users = list(yaml.safe_load_all((out / "users.yaml").read_text()))
    assert {t["kind"] for t in topics} == {"KafkaTopic"}
    assert {t["spec"]["topicName"] for t in topics} >= {"bx.CAF.outbox", "bx.COD.from.CAF"}
    assert {u["metadata"]["name"] for u in users} == {
        "caf.gateway",
        "cod.gateway",
        "cod.post.aru",
        "hub.auditor.oversight",
        "hub.router",
    }
    assert all(u["metadata"]["namespace"] == "border-exchange" for u in topics + users)
    assert "wrote 5 KafkaUser resources" in capsys.readouterr().out


def test_the_command_refuses_a_cluster_without_brokers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust_file = tmp_path / "trust.yaml"
    trust_file.write_text(
        trust_store_yaml(make_sandbox(["CAF", "COD"], open_agreements([("CAF", "COD")])).trust)
    )
    args = ["deploy", "strimzi", "--trust", str(trust_file), "--cluster", "bx", "--brokers", "0"]
    assert main([*args, "--out", str(tmp_path)]) == 1
    assert "--brokers must be at least 1" in capsys.readouterr().err
