"""The provisioning plan: what follows from a trust store, and nothing twice."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from border_exchange.domain import naming
from border_exchange.domain.acl import (
    AclBinding,
    AclOperation,
    PatternType,
    ResourceType,
    topic_acl,
    user,
)
from border_exchange.domain.catalog import ParticipantKind
from border_exchange.domain.provisioning import (
    FEED_RETENTION_MS,
    ClusterState,
    Plan,
    TopicState,
    desired_acls,
    plan,
)
from border_exchange.domain.trust import Hub, Participant, TrustStore
from border_exchange.errors import TrustStoreError


def _participant(
    pid: str, status: str = "active", posts: tuple[str, ...] = ("east",)
) -> Participant:
    return Participant(pid, pid, ParticipantKind.NATIONAL_SERVICE, status, posts, ())


def _trust(*participants: Participant, auditors: tuple[str, ...] = ("oversight",)) -> TrustStore:
    return TrustStore(MappingProxyType({p.id: p for p in participants}), Hub((), auditors))


EMPTY = ClusterState(1, {}, frozenset({"admin"}), frozenset())


def _applied(p: Plan, state: ClusterState) -> ClusterState:
    """The state after a plan is applied, as a perfect applier would leave it."""
    topics = dict(state.topics)
    for spec in p.create_topics:
        topics[spec.name] = TopicState(spec.partitions, spec.replication, dict(spec.configs))
    for change in p.alter_topics:
        old = topics[change.name]
        configs = dict(old.configs) | {k: new for k, (_, new) in change.changes.items()}
        topics[change.name] = replace(old, configs=configs)
    users = (state.users | {u.principal for u in p.create_users}) - {
        u.principal for u in p.delete_users
    }
    acls = (state.acls | set(p.add_acls)) - set(p.remove_acls)
    return ClusterState(state.brokers, topics, frozenset(users), frozenset(acls))


def test_first_run_creates_topics_users_and_acls_and_the_second_changes_nothing() -> None:
    trust = _trust(_participant("CAF"), _participant("COD"))
    first = plan(trust, EMPTY)
    names = {t.name for t in first.create_topics}
    assert names == {
        "bx.hub.audit.CAF", "bx.hub.audit.COD", "bx.hub.quarantine", "bx.hub.agreements",
        "bx.CAF.outbox", "bx.COD.outbox", "bx.CAF.from.COD", "bx.COD.from.CAF",
        "bx.CAF.outbox.state", "bx.COD.outbox.state",
        "bx.CAF.state.from.COD", "bx.COD.state.from.CAF",
        "bx.CAF.hits", "bx.COD.hits", "bx.CAF.notices", "bx.COD.notices",
    }  # fmt: skip
    assert {u.principal for u in first.create_users} == {
        "hub.router", "hub.auditor.oversight",
        "CAF.gateway", "CAF.post.east", "COD.gateway", "COD.post.east",
    }  # fmt: skip
    second = plan(trust, _applied(first, EMPTY))
    assert second.empty
    assert second.summary() == "nothing to change"


def test_feeds_and_outboxes_outlast_thirty_days_offline_and_the_audit_trail_lasts_years() -> None:
    specs = {
        t.name: t
        for t in plan(_trust(_participant("CAF"), _participant("COD")), EMPTY).create_topics
    }
    assert int(specs["bx.CAF.from.COD"].configs["retention.ms"]) > 30 * 24 * 3600 * 1000
    assert specs["bx.CAF.outbox"].configs["retention.ms"] == str(FEED_RETENTION_MS)
    ten_years = str(3650 * 24 * 3600 * 1000)
    assert specs["bx.hub.audit.CAF"].configs["retention.ms"] == ten_years
    assert specs["bx.hub.audit.CAF"].configs["cleanup.policy"] == "delete"  # a hash chain
    assert specs["bx.hub.audit.CAF"].partitions == specs["bx.CAF.outbox"].partitions
    assert specs["bx.hub.quarantine"].configs["retention.ms"] == ten_years
    assert specs["bx.hub.agreements"].configs["retention.ms"] == "-1"
    for spec in specs.values():
        assert spec.configs["compression.type"] == "gzip"
        assert (spec.replication, spec.configs["min.insync.replicas"]) == (1, "1")


def test_three_brokers_give_three_replicas_and_min_isr_two() -> None:
    state = replace(EMPTY, brokers=3)
    for spec in plan(_trust(_participant("CAF")), state).create_topics:
        assert (spec.replication, spec.configs["min.insync.replicas"]) == (3, "2")


def test_a_gateway_writes_only_its_own_outbox_and_only_the_router_writes_feeds() -> None:
    acls = desired_acls(_trust(_participant("CAF"), _participant("COD")))
    writers = {
        (b.principal, b.name, b.pattern)
        for b in acls
        if b.resource_type is ResourceType.TOPIC and b.operation is AclOperation.WRITE
    }
    assert writers == {
        ("User:CAF.gateway", "bx.CAF.outbox", PatternType.LITERAL),
        ("User:COD.gateway", "bx.COD.outbox", PatternType.LITERAL),
        # A post writes hit reports signed with its own key to its service's outbox.
        ("User:CAF.post.east", "bx.CAF.outbox", PatternType.LITERAL),
        ("User:COD.post.east", "bx.COD.outbox", PatternType.LITERAL),
        ("User:hub.router", "bx.CAF.hits", PatternType.LITERAL),
        ("User:hub.router", "bx.COD.hits", PatternType.LITERAL),
        ("User:hub.router", "bx.CAF.notices", PatternType.LITERAL),
        ("User:hub.router", "bx.COD.notices", PatternType.LITERAL),
        ("User:hub.router", "bx.CAF.from.", PatternType.PREFIXED),
        ("User:hub.router", "bx.COD.from.", PatternType.PREFIXED),
        ("User:CAF.gateway", "bx.CAF.outbox.state", PatternType.LITERAL),
        ("User:COD.gateway", "bx.COD.outbox.state", PatternType.LITERAL),
        ("User:hub.router", "bx.CAF.state.from.", PatternType.PREFIXED),
        ("User:hub.router", "bx.COD.state.from.", PatternType.PREFIXED),
        ("User:hub.router", "bx.CAF.outbox.state", PatternType.LITERAL),
        ("User:hub.router", "bx.COD.outbox.state", PatternType.LITERAL),
        ("User:hub.router", "bx.hub.audit.", PatternType.PREFIXED),
        ("User:hub.router", "bx.hub.quarantine", PatternType.LITERAL),
        ("User:hub.router", "bx.hub.agreements", PatternType.LITERAL),
    }


def test_only_auditors_read_the_audit_trail_and_quarantine_and_the_router_its_own_chains() -> None:
    acls = desired_acls(_trust(_participant("CAF"), auditors=("oversight", "second")))

    def readers(topic: str) -> set[str]:
        """Who may read ``topic``, by any binding, literal or prefixed."""
        return {
            b.principal
            for b in acls
            if b.operation is AclOperation.READ
            and b.resource_type is ResourceType.TOPIC
            and (topic.startswith(b.name) if b.pattern is PatternType.PREFIXED else b.name == topic)
        }

    auditors = {"User:hub.auditor.oversight", "User:hub.auditor.second"}
    # The router reads its audit chains back on start (its memory); nobody else but auditors.
    assert readers(naming.audit_topic("CAF")) == auditors | {f"User:{naming.ROUTER_PRINCIPAL}"}
    assert readers(naming.QUARANTINE_TOPIC) == auditors


def test_a_post_reads_its_participants_feeds_and_hits_and_writes_only_its_outbox() -> None:
    acls = {
        b for b in desired_acls(_trust(_participant("CAF"))) if b.principal == "User:CAF.post.east"
    }
    assert {(b.resource_type, b.name, b.pattern, b.operation) for b in acls} == {
        (ResourceType.TOPIC, "bx.CAF.from.", PatternType.PREFIXED, AclOperation.READ),
        (ResourceType.TOPIC, "bx.CAF.state.from.", PatternType.PREFIXED, AclOperation.READ),
        (ResourceType.TOPIC, "bx.hub.agreements", PatternType.LITERAL, AclOperation.READ),
        (ResourceType.GROUP, "bx.CAF.post.east", PatternType.LITERAL, AclOperation.READ),
        (ResourceType.TOPIC, "bx.CAF.hits", PatternType.LITERAL, AclOperation.READ),
        (ResourceType.TOPIC, "bx.CAF.outbox", PatternType.LITERAL, AclOperation.WRITE),
        (
            ResourceType.TRANSACTIONAL_ID,
            "bx.CAF.post.east",
            PatternType.PREFIXED,
            AclOperation.WRITE,
        ),
        (ResourceType.CLUSTER, "kafka-cluster", PatternType.LITERAL, AclOperation.IDEMPOTENT_WRITE),
    }


def test_a_suspended_participant_loses_its_users_and_acls_but_keeps_its_topics() -> None:
    before = _trust(_participant("CAF"), _participant("COD"))
    state = _applied(plan(before, EMPTY), EMPTY)
    after = _trust(_participant("CAF"), _participant("COD", status="suspended"))
    revoke = plan(after, state)
    assert {(u.principal, u.reason) for u in revoke.delete_users} == {
        ("COD.gateway", "participant suspended"),
        ("COD.post.east", "participant suspended"),
    }
    assert revoke.remove_acls
    assert all(
        b.principal in ("User:COD.gateway", "User:COD.post.east") for b in revoke.remove_acls
    )
    assert not revoke.create_topics
    assert "- user COD.gateway (participant suspended)" in revoke.lines()


def test_a_participant_removed_from_the_trust_store_leaves_nothing_behind() -> None:
    state = _applied(plan(_trust(_participant("CAF"), _participant("COD")), EMPTY), EMPTY)
    revoke = plan(_trust(_participant("CAF")), state)
    assert {u.principal for u in revoke.delete_users} == {"COD.gateway", "COD.post.east"}
    left = _applied(revoke, state).acls
    assert not any("COD" in b.principal or b.name.startswith("bx.COD.") for b in left)


def test_the_administrator_and_foreign_users_and_acls_are_never_touched() -> None:
    foreign = topic_acl(user("monitoring"), AclOperation.READ, "bx.CAF.outbox")
    admin_acl = topic_acl(user("admin"), AclOperation.WRITE, "bx.", PatternType.PREFIXED)
    state = replace(
        EMPTY,
        users=frozenset({"admin", "monitoring", "CAF.gateway.old"}),
        acls=frozenset({foreign, admin_acl}),
    )
    result = plan(_trust(_participant("CAF")), state)
    assert not result.delete_users
    assert foreign not in result.remove_acls
    assert admin_acl not in result.remove_acls


def test_a_scoped_run_leaves_other_participants_alone() -> None:
    state = _applied(plan(_trust(_participant("CAF"), _participant("COD")), EMPTY), EMPTY)
    result = plan(_trust(_participant("XQA")), state, scope={"XQA"})
    assert not result.delete_users
    assert not [b for b in result.remove_acls if "CAF" in b.principal + b.name]
    assert {u.principal for u in result.create_users} == {"XQA.gateway", "XQA.post.east"}


def test_drifted_topic_configs_are_set_back_and_partition_shortfalls_reported() -> None:
    trust = _trust(_participant("CAF"))
    state = _applied(plan(trust, EMPTY), EMPTY)
    drifted = dict(state.topics)
    drifted["bx.CAF.outbox"] = TopicState(
        1, 1, {**drifted["bx.CAF.outbox"].configs, "retention.ms": "604800000"}
    )
    result = plan(trust, replace(state, topics=drifted))
    assert [(c.name, dict(c.changes)) for c in result.alter_topics] == [
        ("bx.CAF.outbox", {"retention.ms": ("604800000", str(FEED_RETENTION_MS))})
    ]
    assert any("fewer than 3" in note for note in result.notes)


def test_names_that_cannot_be_principals_are_refused() -> None:
    with pytest.raises(TrustStoreError, match="Bad Post"):
        plan(_trust(_participant("CAF", posts=("Bad Post",))), EMPTY)


def test_acl_bindings_refuse_wildcard_values() -> None:
    from border_exchange.errors import ValidationError

    with pytest.raises(ValidationError, match="not ANY"):
        AclBinding(ResourceType.TOPIC, "t", PatternType.LITERAL, "User:x", AclOperation.ANY)
