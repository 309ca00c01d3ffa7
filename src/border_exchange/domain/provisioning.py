"""What the cluster should hold for a trust store, and the plan that gets it there.

``plan(trust, state)`` is a pure function: the topics, SCRAM users and ACLs that
follow from the trust store, compared with what the cluster holds now. Running
the plan and planning again gives an empty plan. The provisioner owns only the
principals whose names it derives (``<P>.gateway``, ``<P>.post.<name>``,
``hub.router``, ``hub.auditor.<name>``): the administrator and any other user are
never touched. A suspended participant, or one removed from the trust store,
loses every ACL and its credentials on the next run. Topics are never deleted
(their data is evidence), partitions are never changed (keys must keep their
partition), and a topic whose replication differs is reported, not moved.

Topic layout (see ``docs/onboarding.md``):

- outboxes and feeds: 3 partitions, time-retained (35 days by default: a post may
  be offline for 30 days and still catch up);
- beside each, its state (``bx.<P>.outbox.state``, ``bx.<P>.state.from.<Q>``):
  compacted, as many partitions as the log it mirrors (the same key lands on the
  same partition), the latest version of every alert in force;
- audit trails, one per origin (``bx.hub.audit.<P>``, partition i auditing outbox
  partition i, so as many partitions as the outbox) and quarantine: years;
- agreements: 1 partition (one ordered history of the agreement set), forever;
- every figure comes from one ``RetentionPolicy`` (``domain/retention.py``);
- every topic: gzip compression (every client reads it without extra libraries),
  records of at most ``limits.MAX_MESSAGE_BYTES`` (``max.message.bytes``),
  replication min(3, brokers), min ISR 2 when replicated three times, else 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from border_exchange.domain import limits, naming
from border_exchange.domain.acl import (
    AclBinding,
    AclOperation,
    PatternType,
    cluster_acl,
    group_acl,
    topic_acl,
    transactional_id_acl,
    user,
)
from border_exchange.domain.retention import DEFAULT_POLICY, RetentionPolicy
from border_exchange.domain.trust import TrustStore
from border_exchange.errors import TrustStoreError

HUB: Final = "hub"
DAY_MS: Final = 24 * 60 * 60 * 1000
FEED_RETENTION_MS: Final = int(DEFAULT_POLICY.feed.total_seconds() * 1000)
"""Outboxes and feeds by default: 30 days offline plus 5 days of margin."""
FOREVER: Final = -1
PARTICIPANT_PARTITIONS: Final = 3
HUB_LOG_PARTITIONS: Final = 3
COMPRESSION: Final = "gzip"
"""Compressed at rest and on the wire to posts on satellite links. gzip, because every
aiokafka client can read it with the standard library; zstd or lz4 would make each
consumer need an extra native library, or fail to decode the feed."""

READ = AclOperation.READ
WRITE = AclOperation.WRITE
PREFIXED = PatternType.PREFIXED


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the provisioner wants it."""

    name: str
    partitions: int
    replication: int
    configs: Mapping[str, str]

    def describe(self) -> str:
        """``bx.CAF.outbox partitions=3 rf=1 retention.ms=... ...``."""
        configs = " ".join(f"{k}={v}" for k, v in sorted(self.configs.items()))
        return f"{self.name} partitions={self.partitions} rf={self.replication} {configs}"


@dataclass(frozen=True)
class TopicState:
    """A topic as the cluster holds it."""

    partitions: int
    replication: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterState:
    """What the cluster holds now: topics, SCRAM users and ACLs."""

    brokers: int
    topics: Mapping[str, TopicState]
    users: frozenset[str]
    acls: frozenset[AclBinding]


@dataclass(frozen=True)
class TopicConfigChange:
    """Configs of an existing topic to set, each ``key -> (current, wanted)``."""

    name: str
    changes: Mapping[str, tuple[str | None, str]]

    def describe(self) -> str:
        """``bx.CAF.outbox retention.ms=604800000->3024000000``."""
        parts = " ".join(f"{k}={old}->{new}" for k, (old, new) in sorted(self.changes.items()))
        return f"{self.name} {parts}"


@dataclass(frozen=True)
class UserChange:
    """A SCRAM user to create or delete, and why."""

    principal: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """Everything one provisioning run changes; empty when the cluster is already right."""

    create_topics: tuple[TopicSpec, ...] = ()
    alter_topics: tuple[TopicConfigChange, ...] = ()
    create_users: tuple[UserChange, ...] = ()
    delete_users: tuple[UserChange, ...] = ()
    add_acls: tuple[AclBinding, ...] = ()
    remove_acls: tuple[AclBinding, ...] = ()
    notes: tuple[str, ...] = ()
    """Differences the provisioner reports but does not change."""

    @property
    def empty(self) -> bool:
        """Whether the run changes nothing."""
        return not (
            self.create_topics
            or self.alter_topics
            or self.create_users
            or self.delete_users
            or self.add_acls
            or self.remove_acls
        )

    def lines(self) -> tuple[str, ...]:
        """The plan as readable lines: ``+`` adds, ``~`` changes, ``-`` removes, ``!`` notes."""
        out = [f"+ topic {t.describe()}" for t in self.create_topics]
        out += [f"~ topic {c.describe()}" for c in self.alter_topics]
        out += [f"+ user {u.principal} ({u.reason})" for u in self.create_users]
        out += [f"+ acl {b.describe()}" for b in self.add_acls]
        out += [f"- acl {b.describe()}" for b in self.remove_acls]
        out += [f"- user {u.principal} ({u.reason})" for u in self.delete_users]
        out += [f"! {note}" for note in self.notes]
        return tuple(out)

    def summary(self) -> str:
        """Counts of each kind of change, or ``nothing to change``."""
        if self.empty:
            return "nothing to change" + (f" ({len(self.notes)} notes)" if self.notes else "")
        counts = (
            (len(self.create_topics), "topics to create"),
            (len(self.alter_topics), "topics to reconfigure"),
            (len(self.create_users), "users to create"),
            (len(self.delete_users), "users to delete"),
            (len(self.add_acls), "ACLs to add"),
            (len(self.remove_acls), "ACLs to remove"),
        )
        return ", ".join(f"{n} {what}" for n, what in counts if n)


# ------------------------------------------------------------------ desired state


def replication_for(brokers: int) -> int:
    """Replication factor of every topic: three copies when the cluster has them."""
    return max(1, min(3, brokers))


def _topic(name: str, partitions: int, brokers: int, configs: Mapping[str, str]) -> TopicSpec:
    rf = replication_for(brokers)
    return TopicSpec(
        name,
        partitions,
        rf,
        {
            "compression.type": COMPRESSION,
            "max.message.bytes": str(limits.MAX_MESSAGE_BYTES),
            "min.insync.replicas": "2" if rf >= 3 else "1",
            **configs,
        },
    )


def desired_topics(
    trust: TrustStore, brokers: int, policy: RetentionPolicy = DEFAULT_POLICY
) -> dict[str, TopicSpec]:
    """Every topic of the trust store: outboxes, feeds per ordered pair, their states, the
    hub's logs, each configured by ``policy``."""
    policy.check()
    ids = sorted(trust.participants)
    log, state = policy.log_configs(), policy.state_configs()
    n = PARTICIPANT_PARTITIONS
    specs = [
        _topic(naming.QUARANTINE_TOPIC, HUB_LOG_PARTITIONS, brokers, policy.quarantine_configs()),
        _topic(naming.AGREEMENTS_TOPIC, 1, brokers, policy.agreements_configs()),
    ]
    for p in ids:
        specs.append(_topic(naming.outbox_topic(p), n, brokers, log))
        specs.append(_topic(naming.outbox_state_topic(p), n, brokers, state))
        specs.append(_topic(naming.audit_topic(p), n, brokers, policy.audit_configs()))
        # Hit reports say where a person was seen: kept as long as a feed, no longer.
        specs.append(_topic(naming.hits_topic(p), n, brokers, log))
        specs.append(_topic(naming.notices_topic(p), n, brokers, log))
        for q in ids:
            if q != p:
                specs.append(_topic(naming.feed_topic(p, q), n, brokers, log))
                specs.append(_topic(naming.feed_state_topic(p, q), n, brokers, state))
    return {s.name: s for s in specs}


def _check_names(trust: TrustStore) -> None:
    problems = [
        f"participants.{p.id}.posts: {post!r} must be lower-case letters, digits and hyphens"
        for p in trust.participants.values()
        for post in p.posts
        if not naming.is_role_name(post)
    ]
    problems += [
        f"hub.auditors: {name!r} must be lower-case letters, digits and hyphens"
        for name in trust.hub.auditors
        if not naming.is_role_name(name)
    ]
    if problems:
        raise TrustStoreError("names that cannot become Kafka principals: " + "; ".join(problems))


def desired_users(trust: TrustStore) -> dict[str, str]:
    """Every principal that should hold credentials, with what it is for."""
    _check_names(trust)
    users = {naming.ROUTER_PRINCIPAL: "router"}
    users.update({naming.auditor_principal(a): "auditor" for a in trust.hub.auditors})
    for p in sorted(trust.participants.values(), key=lambda x: x.id):
        if not p.active:
            continue
        users[naming.gateway_principal(p.id)] = f"gateway of {p.id}"
        users.update({naming.post_principal(p.id, post): f"post of {p.id}" for post in p.posts})
    return users


def _gateway_acls(p: str) -> list[AclBinding]:
    who = user(naming.gateway_principal(p))
    outbox = naming.outbox_topic(p)
    txn = naming.gateway_transactional_id(p)
    return [
        topic_acl(who, WRITE, outbox),
        topic_acl(who, READ, outbox),
        # The outbox state holds the last version of every alert in force: the gateway
        # writes it with each publish and rebuilds its version history from it.
        topic_acl(who, WRITE, naming.outbox_state_topic(p)),
        topic_acl(who, READ, naming.outbox_state_topic(p)),
        topic_acl(who, READ, naming.feed_prefix(p), PREFIXED),
        # The national desk: hit reports on its alerts, acknowledgements of its posts'
        # reports, and notices of its own records the router quarantined.
        topic_acl(who, READ, naming.hits_topic(p)),
        topic_acl(who, READ, naming.notices_topic(p)),
        group_acl(who, READ, naming.gateway_group_prefix(p), PREFIXED),
        transactional_id_acl(who, WRITE, txn, PREFIXED),
        cluster_acl(who, AclOperation.IDEMPOTENT_WRITE),
    ]


def _post_acls(p: str, post: str) -> list[AclBinding]:
    who = user(naming.post_principal(p, post))
    return [
        topic_acl(who, READ, naming.feed_prefix(p), PREFIXED),
        topic_acl(who, READ, naming.feed_state_prefix(p), PREFIXED),
        # The signed agreements, to check that each copy was permitted (domain.permitted).
        topic_acl(who, READ, naming.AGREEMENTS_TOPIC),
        group_acl(who, READ, naming.post_group(p, post)),
        # Hit reports, signed with the post's own key, go to its service's outbox (the
        # router routes nothing else a post key signs); acknowledgements come back.
        topic_acl(who, WRITE, naming.outbox_topic(p)),
        topic_acl(who, READ, naming.hits_topic(p)),
        transactional_id_acl(who, WRITE, naming.post_transactional_id(p, post), PREFIXED),
        cluster_acl(who, AclOperation.IDEMPOTENT_WRITE),
    ]


def _router_acls(ids: Iterable[str]) -> list[AclBinding]:
    who = user(naming.ROUTER_PRINCIPAL)
    acls = [
        topic_acl(who, WRITE, naming.AUDIT_PREFIX, PREFIXED),
        # The router reads its own audit chains back on start: its memory (routed ids,
        # who received each alert, the chain heads) is rebuilt from them, not from disk.
        topic_acl(who, READ, naming.AUDIT_PREFIX, PREFIXED),
        topic_acl(who, WRITE, naming.QUARANTINE_TOPIC),
        topic_acl(who, WRITE, naming.AGREEMENTS_TOPIC),
        topic_acl(who, READ, naming.AGREEMENTS_TOPIC),
        group_acl(who, READ, naming.ROUTER_GROUP, PREFIXED),
        transactional_id_acl(who, WRITE, naming.ROUTER_TXN_PREFIX, PREFIXED),
        cluster_acl(who, AclOperation.IDEMPOTENT_WRITE),
    ]
    for p in ids:
        acls.append(topic_acl(who, READ, naming.outbox_topic(p)))
        acls.append(topic_acl(who, WRITE, naming.feed_prefix(p), PREFIXED))
        # Read back only when records of an audit chain were deleted: what the router
        # delivered is then recovered from the feeds (see ``audit_gap``).
        acls.append(topic_acl(who, READ, naming.feed_prefix(p), PREFIXED))
        # Feed state in the routing transaction; tombstones of erased alerts in both.
        acls.append(topic_acl(who, WRITE, naming.feed_state_prefix(p), PREFIXED))
        # Read to know whether a hit's reporter received the alert (``hit_routing``).
        acls.append(topic_acl(who, READ, naming.feed_state_prefix(p), PREFIXED))
        acls.append(topic_acl(who, WRITE, naming.hits_topic(p)))
        # Read to know whether an acknowledged hit report reached the origin.
        acls.append(topic_acl(who, READ, naming.hits_topic(p)))
        acls.append(topic_acl(who, WRITE, naming.notices_topic(p)))
        acls.append(topic_acl(who, WRITE, naming.outbox_state_topic(p)))
    return acls


def _auditor_acls(name: str, ids: Iterable[str]) -> list[AclBinding]:
    who = user(naming.auditor_principal(name))
    acls = [
        topic_acl(who, READ, naming.AUDIT_PREFIX, PREFIXED),
        topic_acl(who, READ, naming.QUARANTINE_TOPIC),
        topic_acl(who, READ, naming.AGREEMENTS_TOPIC),
        group_acl(who, READ, naming.auditor_group_prefix(name), PREFIXED),
    ]
    for p in ids:
        acls.append(topic_acl(who, READ, naming.outbox_topic(p)))
        acls.append(topic_acl(who, READ, naming.feed_prefix(p), PREFIXED))
        acls.append(topic_acl(who, READ, naming.hits_topic(p)))  # the copies of hits
    return acls


def desired_acls(trust: TrustStore) -> frozenset[AclBinding]:
    """Every ACL the trust store implies (operations implied by others, e.g. DESCRIBE, omitted).

    The router and auditors keep access to a suspended participant's topics: the
    router must still deliver cancellations of its earlier alerts, auditors replay
    everything. A participant removed from the trust store leaves no ACL behind.
    """
    _check_names(trust)
    ids = sorted(trust.participants)
    acls = _router_acls(ids)
    for name in trust.hub.auditors:
        acls += _auditor_acls(name, ids)
    for p in ids:
        participant = trust.participants[p]
        if not participant.active:
            continue
        acls += _gateway_acls(p)
        for post in participant.posts:
            acls += _post_acls(p, post)
    return frozenset(acls)


# ----------------------------------------------------------------------- the plan


def _principal_name(principal: str) -> str | None:
    kind, _, name = principal.partition(":")
    return name if kind == "User" else None


def _owned(owner: str | None, scope: frozenset[str] | None) -> bool:
    return owner is not None and (scope is None or owner == HUB or owner in scope)


def _acl_managed(binding: AclBinding, scope: frozenset[str] | None) -> bool:
    name = _principal_name(binding.principal)
    owner = naming.principal_owner(name) if name is not None else None
    if not _owned(owner, scope):
        return False
    if scope is None or owner != HUB:
        return True
    return naming.resource_owner(binding.name) in scope


def _removable(owner: str | None, scope: frozenset[str] | None) -> bool:
    # A scoped run adds the hub's principals and ACLs but removes only its participants'.
    return owner is not None and (scope is None or owner in scope)


def _removal_reason(principal: str, trust: TrustStore) -> str:
    owner = naming.principal_owner(principal)
    if owner == HUB:
        return "auditor no longer in the trust store"
    participant = trust.participants.get(owner or "")
    if participant is None:
        return "participant no longer in the trust store"
    if not participant.active:
        return f"participant {participant.status}"
    return "post no longer in the trust store"


def plan(
    trust: TrustStore,
    state: ClusterState,
    scope: Iterable[str] | None = None,
    policy: RetentionPolicy = DEFAULT_POLICY,
) -> Plan:
    """The changes that make ``state`` match ``trust``; empty when it already does.

    Topic configs that differ from ``policy`` are changed (retention included), so a
    changed policy reaches existing topics. ``scope`` limits removals to some
    participants' principals and ACLs (the hub's
    principals and ACLs are then only added, never removed, except those on the
    scoped participants' resources), for a cluster shared with other trust
    stores; ``None`` manages every principal the provisioner could have made.
    """
    within = None if scope is None else frozenset(scope)
    topics = desired_topics(trust, state.brokers, policy)
    create = tuple(spec for name, spec in sorted(topics.items()) if name not in state.topics)
    alter: list[TopicConfigChange] = []
    notes: list[str] = []
    for name, spec in sorted(topics.items()):
        current = state.topics.get(name)
        if current is None:
            continue
        changes = {
            key: (current.configs.get(key), value)
            for key, value in sorted(spec.configs.items())
            if current.configs.get(key) != value
        }
        if changes:
            alter.append(TopicConfigChange(name, changes))
        if current.partitions < spec.partitions:
            notes.append(
                f"topic {name} has {current.partitions} partitions, fewer than {spec.partitions}; "
                "left as is (adding partitions would move keys)"
            )
        if current.replication != spec.replication:
            notes.append(
                f"topic {name} has replication {current.replication}, not {spec.replication}; "
                "reassign its partitions to change it"
            )

    users = desired_users(trust)
    create_users = tuple(
        UserChange(u, purpose)
        for u, purpose in sorted(users.items())
        if u not in state.users and _owned(naming.principal_owner(u), within)
    )
    delete_users = tuple(
        UserChange(u, _removal_reason(u, trust))
        for u in sorted(state.users)
        if u not in users and _removable(naming.principal_owner(u), within)
    )
    wanted = desired_acls(trust)
    held = frozenset(b for b in state.acls if _acl_managed(b, within))
    return Plan(
        create_topics=create,
        alter_topics=tuple(alter),
        create_users=create_users,
        delete_users=delete_users,
        add_acls=tuple(sorted(wanted - state.acls)),
        remove_acls=tuple(sorted(held - wanted)),
        notes=tuple(notes),
    )
