"""Strimzi resources for a trust store: a KafkaTopic per topic, a KafkaUser per principal.

On Kubernetes the Strimzi operators do what ``border-exchange provision`` does on a
plain cluster: the Topic Operator creates the topics of ``desired_topics`` and the
User Operator creates each SCRAM-SHA-512 user with the ACLs of ``desired_acls``.
The resources are plain mappings, ready to be written as YAML, in a stable order so
that a regenerated directory differs from the committed one only where the trust
store changed.

Kubernetes names must be lower case, and Strimzi names a user's Kafka principal
after its resource. A participant's principals are therefore lower case on Strimzi
(``CAF.gateway`` becomes ``caf.gateway``); topics keep their exact names in
``spec.topicName``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from border_exchange.domain.acl import (
    USER_PRINCIPAL_PREFIX,
    AclBinding,
    AclOperation,
    AclPermission,
    PatternType,
    ResourceType,
)
from border_exchange.domain.provisioning import (
    TopicSpec,
    desired_acls,
    desired_topics,
    desired_users,
)
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import ValidationError

API_VERSION: Final = "kafka.strimzi.io/v1beta2"
CLUSTER_LABEL: Final = "strimzi.io/cluster"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "border-exchange"}

_RESOURCE_TYPES: Final = {
    ResourceType.TOPIC: "topic",
    ResourceType.GROUP: "group",
    ResourceType.TRANSACTIONAL_ID: "transactionalId",
    ResourceType.CLUSTER: "cluster",
}
_PATTERNS: Final = {PatternType.LITERAL: "literal", PatternType.PREFIXED: "prefix"}
_OPERATIONS: Final = {
    AclOperation.ALL: "All",
    AclOperation.READ: "Read",
    AclOperation.WRITE: "Write",
    AclOperation.CREATE: "Create",
    AclOperation.DELETE: "Delete",
    AclOperation.ALTER: "Alter",
    AclOperation.DESCRIBE: "Describe",
    AclOperation.CLUSTER_ACTION: "ClusterAction",
    AclOperation.DESCRIBE_CONFIGS: "DescribeConfigs",
    AclOperation.ALTER_CONFIGS: "AlterConfigs",
    AclOperation.IDEMPOTENT_WRITE: "IdempotentWrite",
}
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")


def kube_name(name: str) -> str:
    """The Kubernetes resource name of a topic or user: lower case, ``_`` as ``-``."""
    candidate = name.lower().replace("_", "-")
    if _DNS_SUBDOMAIN.fullmatch(candidate) is None:
        raise ValidationError(
            "name cannot be a Kubernetes resource name",
            (f"{name!r}: lower-cased it must be letters, digits, '.' and '-', 253 at most",),
        )
    return candidate


def strimzi_principal(principal: str) -> str:
    """The Kafka user name Strimzi gives principal ``principal`` (its resource name)."""
    return kube_name(principal)


def _metadata(name: str, cluster: str, namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {CLUSTER_LABEL: cluster, **MANAGED_BY}
    return metadata


def _unique(kind: str, names: Iterable[tuple[str, str]]) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for original, kube in names:
        if kube in seen:
            clashes.append(f"{seen[kube]!r} and {original!r} both become {kube!r}")
        seen[kube] = original
    if clashes:
        raise ValidationError(f"{kind} names collide on Kubernetes", tuple(clashes))


def kafka_topic(spec: TopicSpec, cluster: str, namespace: str | None = None) -> dict[str, Any]:
    """The KafkaTopic resource of one topic."""
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaTopic",
        "metadata": _metadata(kube_name(spec.name), cluster, namespace),
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": spec.replication,
            "config": dict(sorted(spec.configs.items())),
        },
    }


def kafka_topics(
    trust: TrustStore, cluster: str, namespace: str | None = None, brokers: int = 3
) -> list[dict[str, Any]]:
    """A KafkaTopic for every topic the trust store implies, by topic name."""
    specs = [spec for _, spec in sorted(desired_topics(trust, brokers).items())]
    _unique("topic", ((s.name, kube_name(s.name)) for s in specs))
    return [kafka_topic(spec, cluster, namespace) for spec in specs]


def _resource(binding: AclBinding) -> dict[str, str]:
    kind = _RESOURCE_TYPES.get(binding.resource_type)
    if kind is None:
        raise ValidationError(
            "ACL cannot be expressed for Strimzi",
            (f"{binding.describe()}: resource type {binding.resource_type.name} is not supported",),
        )
    if kind == "cluster":
        return {"type": kind}
    return {"type": kind, "name": binding.name, "patternType": _PATTERNS[binding.pattern]}


def strimzi_acls(bindings: Iterable[AclBinding]) -> list[dict[str, Any]]:
    """Strimzi ``simple`` ACL rules of one user: one rule per resource, host and permission."""
    grouped: dict[tuple[tuple[tuple[str, str], ...], str, str], set[AclOperation]] = defaultdict(
        set
    )
    for binding in bindings:
        if binding.operation not in _OPERATIONS:
            raise ValidationError(
                "ACL cannot be expressed for Strimzi",
                (f"{binding.describe()}: operation {binding.operation.name} is not supported",),
            )
        resource = tuple(_resource(binding).items())
        permission = "allow" if binding.permission is AclPermission.ALLOW else "deny"
        grouped[(resource, binding.host, permission)].add(binding.operation)
    rules = []
    for (resource, host, permission), operations in sorted(grouped.items()):
        rules.append(
            {
                "resource": dict(resource),
                "operations": [_OPERATIONS[op] for op in sorted(operations)],
                "host": host,
                "type": permission,
            }
        )
    return rules


def kafka_user(
    principal: str,
    purpose: str,
    bindings: Iterable[AclBinding],
    cluster: str,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The KafkaUser resource of one principal: SCRAM-SHA-512 and its ACLs."""
    metadata = _metadata(strimzi_principal(principal), cluster, namespace)
    metadata["annotations"] = {
        "border-exchange/principal": principal,
        "border-exchange/role": purpose,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaUser",
        "metadata": metadata,
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": strimzi_acls(bindings)},
        },
    }


def kafka_users(
    trust: TrustStore, cluster: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    """A KafkaUser for every principal of the trust store, each with exactly its ACLs."""
    users = desired_users(trust)
    by_principal: Mapping[str, list[AclBinding]] = _acls_by_principal(desired_acls(trust))
    strangers = sorted(set(by_principal) - set(users))
    if strangers:
        raise ValidationError("ACLs of principals that have no user", tuple(strangers))
    _unique("user", ((u, strimzi_principal(u)) for u in users))
    return [
        kafka_user(principal, purpose, by_principal.get(principal, ()), cluster, namespace)
        for principal, purpose in sorted(users.items())
    ]


def _acls_by_principal(bindings: Iterable[AclBinding]) -> dict[str, list[AclBinding]]:
    grouped: dict[str, list[AclBinding]] = defaultdict(list)
    for binding in sorted(bindings):
        name = binding.principal.removeprefix(USER_PRINCIPAL_PREFIX)
        grouped[name].append(binding)
    return dict(grouped)
