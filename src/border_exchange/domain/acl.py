"""Kafka ACL bindings as pure values, with the enums' wire codes of Kafka's protocol.

An ``AclBinding`` says: ``principal`` may (ALLOW) or may not (DENY) perform
``operation`` on the resource ``resource_type``/``name``, matched literally or by
prefix, from ``host``. The provisioner compares sets of these values, so they are
frozen, hashable and ordered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from border_exchange.errors import ValidationError


class ResourceType(IntEnum):
    """Kind of resource an ACL protects (Kafka's ``ResourceType`` codes)."""

    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    """How an ACL's resource name matches (Kafka's ``PatternType`` codes)."""

    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    """The operation an ACL allows or denies (Kafka's ``AclOperation`` codes)."""

    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class AclPermission(IntEnum):
    """Whether an ACL allows or denies (Kafka's ``AclPermissionType`` codes)."""

    ANY = 1
    DENY = 2
    ALLOW = 3


CLUSTER_RESOURCE_NAME = "kafka-cluster"
"""The one name of the CLUSTER resource."""

USER_PRINCIPAL_PREFIX = "User:"


def user(name: str) -> str:
    """The ACL principal string of SASL or TLS user ``name``."""
    return USER_PRINCIPAL_PREFIX + name


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ACL: ``principal`` may (or may not) do ``operation`` on a resource."""

    resource_type: ResourceType
    name: str
    pattern: PatternType
    principal: str
    operation: AclOperation
    permission: AclPermission = AclPermission.ALLOW
    host: str = "*"

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.resource_type is ResourceType.ANY:
            problems.append("resource_type: a binding names one resource type, not ANY")
        if self.pattern not in (PatternType.LITERAL, PatternType.PREFIXED):
            problems.append(f"pattern: a binding is LITERAL or PREFIXED, not {self.pattern.name}")
        if self.operation is AclOperation.ANY:
            problems.append("operation: a binding names one operation, not ANY")
        if self.permission is AclPermission.ANY:
            problems.append("permission: a binding is ALLOW or DENY, not ANY")
        if not self.name:
            problems.append("name: empty resource name")
        if ":" not in self.principal:
            problems.append(f"principal: {self.principal!r} is not of the form 'User:<name>'")
        if problems:
            raise ValidationError("invalid ACL binding", tuple(problems))

    def describe(self) -> str:
        """One readable line, e.g. ``User:CAF.gateway ALLOW WRITE topic:bx.CAF.outbox LITERAL``."""
        host = "" if self.host == "*" else f" from {self.host}"
        return (
            f"{self.principal} {self.permission.name} {self.operation.name} "
            f"{self.resource_type.name.lower()}:{self.name} {self.pattern.name}{host}"
        )


def topic_acl(
    principal: str, operation: AclOperation, name: str, pattern: PatternType = PatternType.LITERAL
) -> AclBinding:
    """An ALLOW binding on a topic."""
    return AclBinding(ResourceType.TOPIC, name, pattern, principal, operation)


def group_acl(
    principal: str, operation: AclOperation, name: str, pattern: PatternType = PatternType.LITERAL
) -> AclBinding:
    """An ALLOW binding on a consumer group."""
    return AclBinding(ResourceType.GROUP, name, pattern, principal, operation)


def transactional_id_acl(
    principal: str, operation: AclOperation, name: str, pattern: PatternType = PatternType.LITERAL
) -> AclBinding:
    """An ALLOW binding on a transactional id."""
    return AclBinding(ResourceType.TRANSACTIONAL_ID, name, pattern, principal, operation)


def cluster_acl(principal: str, operation: AclOperation) -> AclBinding:
    """An ALLOW binding on the cluster itself (e.g. IDEMPOTENT_WRITE)."""
    return AclBinding(
        ResourceType.CLUSTER, CLUSTER_RESOURCE_NAME, PatternType.LITERAL, principal, operation
    )
