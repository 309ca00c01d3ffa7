"""Reading the cluster's provisioning state and applying a provisioning plan.

The state is what ``domain.provisioning.plan`` compares with the trust store:
the number of brokers, every ``bx.`` topic with its partitions, replication and
configs, the SCRAM users and the ACLs. Applying runs the plan in an order that
never widens access by accident: topics, then users, then new ACLs, then ACL
removals, then credential deletions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.protocol.types import Boolean, CompactArray, Int8, Int32

from border_exchange.adapters.kafka_security import (
    ERROR,
    RESOURCE,
    STRING,
    TAGS,
    check_error,
    connected_admin,
    create_acls,
    delete_acls,
    delete_scram_user,
    describe_acls,
    flexible_api,
    list_scram_users,
    send_struct,
    upsert_scram_user,
)
from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.naming import TOPIC_PREFIX
from border_exchange.domain.provisioning import ClusterState, Plan, TopicState
from border_exchange.errors import KafkaError

_TOPIC_RESOURCE: Final = 2
_SET: Final = 0
_TOPIC_ALREADY_EXISTS: Final = 36

_IncrementalAlterConfigsRequestV1 = flexible_api(
    "IncrementalAlterConfigs",
    44,
    1,
    request=[
        (
            "resources",
            CompactArray(
                *RESOURCE,
                (
                    "configs",
                    CompactArray(
                        ("name", STRING), ("config_operation", Int8), ("value", STRING), TAGS
                    ),
                ),
                TAGS,
            ),
        ),
        ("validate_only", Boolean),
    ],
    response=[
        ("throttle_time_ms", Int32),
        (
            "responses",
            CompactArray(
                *ERROR,
                *RESOURCE,
                TAGS,
            ),
        ),
    ],
)


async def _topics(client: AIOKafkaAdminClient) -> dict[str, TopicState]:
    described = await client.describe_topics()
    ours = {
        t["topic"]: t
        for t in described
        if t["topic"].startswith(TOPIC_PREFIX) and t["error_code"] == 0
    }
    if not ours:
        return {}
    responses = await client.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(ours)]
    )
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            error_code, error_message, _type, name, entries = resource[:5]
            check_error(error_code, error_message, f"describing the configs of topic {name}")
            configs[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
    states = {}
    for name, topic in ours.items():
        partitions = topic["partitions"]
        replication = min((len(p["replicas"]) for p in partitions), default=0)
        states[name] = TopicState(len(partitions), replication, configs.get(name, {}))
    return states


async def read_state(settings: KafkaSettings) -> ClusterState:
    """The cluster's brokers, ``bx.`` topics, SCRAM users and ACLs, as the planner sees them."""
    async with connected_admin(settings) as client:
        try:
            cluster = await client.describe_cluster()
            topics = await _topics(client)
        except AioKafkaError as exc:
            raise KafkaError(f"reading the cluster's topics failed: {exc}") from exc
    users = await list_scram_users(settings)
    acls = await describe_acls(settings)
    return ClusterState(len(cluster["brokers"]), topics, users, acls)


async def _create_topics(client: AIOKafkaAdminClient, plan: Plan) -> None:
    new = [
        NewTopic(t.name, t.partitions, t.replication, topic_configs=dict(t.configs))
        for t in plan.create_topics
    ]
    try:
        response = await client.create_topics(new)
    except AioKafkaError as exc:
        raise KafkaError(f"creating topics failed: {exc}") from exc
    for result in response.topic_errors:
        name, code = result[0], result[1]
        message = result[2] if len(result) > 2 else None
        if code != _TOPIC_ALREADY_EXISTS:
            check_error(code, message, f"creating topic {name}")


async def _alter_topics(client: AIOKafkaAdminClient, plan: Plan) -> None:
    resources: list[tuple[Any, ...]] = [
        (
            _TOPIC_RESOURCE,
            change.name,
            [(key, _SET, new, {}) for key, (_old, new) in sorted(change.changes.items())],
            {},
        )
        for change in plan.alter_topics
    ]
    response = await send_struct(client, _IncrementalAlterConfigsRequestV1(resources, False, {}))
    for code, message, _type, name, _tags in response.responses:
        check_error(code, message, f"setting the configs of topic {name}")


async def apply_plan(
    settings: KafkaSettings, plan: Plan, passwords: Mapping[str, str]
) -> dict[str, Any]:
    """Carry out ``plan``; ``passwords`` holds one for every user the plan creates."""
    missing = [u.principal for u in plan.create_users if u.principal not in passwords]
    if missing:
        raise KafkaError(f"no password for the users to create: {', '.join(missing)}")
    async with connected_admin(settings) as client:
        if plan.create_topics:
            await _create_topics(client, plan)
        if plan.alter_topics:
            await _alter_topics(client, plan)
    for change in plan.create_users:
        await upsert_scram_user(settings, change.principal, passwords[change.principal])
    await create_acls(settings, plan.add_acls)
    removed = await delete_acls(settings, plan.remove_acls)
    for change in plan.delete_users:
        await delete_scram_user(settings, change.principal)
    return {
        "topics_created": len(plan.create_topics),
        "topics_reconfigured": len(plan.alter_topics),
        "users_created": len(plan.create_users),
        "users_deleted": len(plan.delete_users),
        "acls_added": len(plan.add_acls),
        "acls_removed": removed,
    }
