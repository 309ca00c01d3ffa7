"""The retention policy: one place for every figure, refused when incoherent, applied by plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from border_exchange.domain import naming
from border_exchange.domain.acl import AclOperation, PatternType, topic_acl, user
from border_exchange.domain.catalog import ParticipantKind
from border_exchange.domain.provisioning import ClusterState, TopicState, desired_acls, plan
from border_exchange.domain.retention import (
    DEFAULT_POLICY,
    RetentionPolicy,
    parse_duration,
    policy_from,
)
from border_exchange.domain.trust import Hub, Participant, TrustStore
from border_exchange.errors import ConfigError

DAY = timedelta(days=1)


def _trust(*ids: str) -> TrustStore:
    participants = {
        p: Participant(p, p, ParticipantKind.NATIONAL_SERVICE, "active", ("east",), ()) for p in ids
    }
    return TrustStore(MappingProxyType(participants), Hub((), ("oversight",)))


EMPTY = ClusterState(1, {}, frozenset({"admin"}), frozenset())


def test_state_topics_are_compacted_beside_every_feed_and_outbox() -> None:
    specs = {t.name: t for t in plan(_trust("CAF", "COD"), EMPTY).create_topics}
    for name in ("bx.CAF.outbox.state", "bx.CAF.state.from.COD", "bx.COD.state.from.CAF"):
        configs = specs[name].configs
        assert configs["cleanup.policy"] == "compact"
        assert configs["retention.ms"] == "-1"
        assert configs["delete.retention.ms"] == str(24 * 3600 * 1000)
        assert specs[name].partitions == specs["bx.CAF.outbox"].partitions
    assert specs["bx.CAF.from.COD"].configs["cleanup.policy"] == "delete"


def test_a_post_reads_only_its_own_services_state_and_only_the_router_writes_feed_state() -> None:
    acls = desired_acls(_trust("CAF", "COD"))
    post = user(naming.post_principal("CAF", "east"))
    assert topic_acl(post, AclOperation.READ, "bx.CAF.state.from.", PatternType.PREFIXED) in acls
    read = {b.name for b in acls if b.principal == post and b.operation is AclOperation.READ}
    assert not any(name.startswith("bx.COD.") for name in read)
    writers = {
        b.principal
        for b in acls
        if b.operation is AclOperation.WRITE and b.name.startswith("bx.CAF.state.from.")
    }
    assert writers == {user(naming.ROUTER_PRINCIPAL)}
    gateway = user(naming.gateway_principal("CAF"))
    assert topic_acl(gateway, AclOperation.WRITE, "bx.CAF.outbox.state") in acls
    assert topic_acl(gateway, AclOperation.WRITE, "bx.COD.outbox.state") not in acls


def test_a_changed_policy_is_applied_to_existing_topics() -> None:
    trust = _trust("CAF", "COD")
    first = plan(trust, EMPTY)
    topics = {
        t.name: TopicState(t.partitions, t.replication, dict(t.configs))
        for t in first.create_topics
    }
    state = replace(EMPTY, topics=topics)
    assert not plan(trust, state).alter_topics
    shorter = replace(DEFAULT_POLICY, feed=20 * DAY, grace=2 * DAY)
    changed = {c.name: dict(c.changes) for c in plan(trust, state, policy=shorter).alter_topics}
    assert changed["bx.CAF.from.COD"] == {
        "retention.ms": (str(35 * 86_400_000), str(20 * 86_400_000))
    }
    # Hit reports and notices are kept as long as a feed: they follow its retention.
    assert set(changed) == {
        "bx.CAF.outbox", "bx.COD.outbox", "bx.CAF.from.COD", "bx.COD.from.CAF",
        "bx.CAF.hits", "bx.COD.hits", "bx.CAF.notices", "bx.COD.notices",
    }  # fmt: skip


def test_an_audit_shorter_than_the_alerts_it_covers_is_refused_naming_both_figures() -> None:
    short = replace(DEFAULT_POLICY, audit=3 * 365 * DAY)
    with pytest.raises(ConfigError) as caught:
        plan(_trust("CAF"), EMPTY, policy=short)
    text = str(caught.value)
    assert "audit retention 1095 days" in text
    assert "1825 days plus 7 days of grace" in text


def test_a_policy_file_names_durations_and_refuses_unknown_settings() -> None:
    policy = policy_from({"feed": "10s", "grace": "2s", "audit": "20y"}, "r.yaml")
    assert policy.feed == timedelta(seconds=10)
    assert policy.log_configs()["retention.ms"] == "10000"
    assert policy.audit_configs()["retention.ms"] == str(20 * 365 * 86_400_000)
    with pytest.raises(ConfigError, match="unknown retention settings grce"):
        policy_from({"grce": "2s"}, "r.yaml")
    with pytest.raises(ConfigError, match=r"r\.yaml: feed: 'a month' is not a duration"):
        policy_from({"feed": "a month"}, "r.yaml")
    assert parse_duration("500ms", "x") == timedelta(milliseconds=500)


def test_every_figure_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="grace: must be positive"):
        RetentionPolicy(grace=timedelta(0)).check()


def test_the_erasure_bound_adds_grace_segment_life_and_compaction_lag() -> None:
    assert DEFAULT_POLICY.erasure_bound == 9 * DAY


def test_a_retention_file_is_read_and_an_incoherent_one_refused(tmp_path: Path) -> None:
    from border_exchange.services.provisioner import load_retention

    good = tmp_path / "retention.yaml"
    good.write_text("retention:\n  feed: 20d\n  grace: 3d\n", encoding="utf-8")
    assert load_retention(good).feed == 20 * DAY
    bad = tmp_path / "short.yaml"
    bad.write_text("retention: {audit: 1y}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="audit retention 365 days"):
        load_retention(bad)


def test_the_router_takes_its_grace_period_from_the_retention_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from border_exchange.bootstrap import build_router
    from border_exchange.demo.sandbox import make_sandbox

    sandbox = make_sandbox(["CAF", "COD"], 'version: "r"\nagreements: []\n')
    paths = sandbox.write(tmp_path, b"retention-test")
    (tmp_path / "retention.yaml").write_text("retention: {grace: 3d}\n", encoding="utf-8")
    config = {
        "kafka": {"bootstrap": "127.0.0.1:9", "security_protocol": "PLAINTEXT"},
        "trust_store": str(paths["trust"]),
        "agreements": str(paths["agreements"]),
        "agreement_history": str(tmp_path / "history"),
        "signing_key": str(paths["key:hub"]),
        "retention": str(tmp_path / "retention.yaml"),
        "metrics_port": 0,
    }
    (tmp_path / "router.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("BX_KEY_PASSPHRASE", "retention-test")
    app = build_router(tmp_path / "router.yaml")
    assert app.router.tuning.retention.grace == 3 * DAY
