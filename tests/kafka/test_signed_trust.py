"""On a real broker: a resume signed by one party leaves the agreement suspended, and a
running router refuses an under-signed trust store and routes on under the last valid one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from border_exchange.adapters.agreement_files import AgreementSource
from border_exchange.adapters.trust_file import TrustFile, read_governed
from border_exchange.bootstrap import PolicySource
from border_exchange.demo.sandbox import Sandbox, make_sandbox, open_agreements, trust_store_yaml
from border_exchange.domain import naming
from border_exchange.domain.agreements import (
    StatementAction,
    StatusStatement,
    add_signed,
    parse_agreement_set,
)
from border_exchange.domain.audit import AuditKind
from border_exchange.domain.audit_values import Verdict, ViolationCode, Window
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.consent import sign_statement
from border_exchange.domain.encoding import decode_record
from border_exchange.domain.envelope import Envelope
from border_exchange.domain.trust import TrustStore
from border_exchange.domain.trust_governance import (
    TRUST_STORE_HEADER,
    GovernedStore,
    StoreReference,
    governance_document,
)
from border_exchange.services.auditor import KafkaReader, Progress, ReplayRequest, replay
from border_exchange.services.router import PolicyView
from tests.conftest import KafkaCluster
from tests.exchange import Exchange, create_topics, make_exchange, random_ids, running
from tests.kafka.test_router import _signed
from tests.waiting import eventually

pytestmark = pytest.mark.kafka


async def test_a_resume_signed_by_one_party_does_not_lift_a_suspension(
    kafka: KafkaCluster,
) -> None:
    ex = await make_exchange(kafka, 3, open_agreements([("P0", "P1"), ("P0", "P2")]))
    a, b, c = ex.ids
    create = ex.alert(AlertType.WANTED_PERSON, a)
    alert_id = create.alert_id
    agreement = ex.sandbox.agreements.by_id(f"{a}-{c}")
    now = datetime.now(UTC)

    def statement(
        party: str, action: StatementAction, minutes_ago: int
    ) -> tuple[str, StatusStatement]:
        key_id, key = ex.sandbox.key_ids[party], ex.sandbox.keys[party]
        signed_at = now - timedelta(minutes=minutes_ago)
        return agreement.id, sign_statement(agreement, party, action, key_id, key, signed_at)

    def view(*statements: tuple[str, StatusStatement]) -> PolicyView:
        text = add_signed(ex.sandbox.agreements_text, list(statements))
        return PolicyView.build(ex.sandbox.trust, parse_agreement_set(text))

    def update(version: int) -> Envelope:
        return ex.seal(
            ex.alert(
                AlertType.WANTED_PERSON, a, alert_id=alert_id, version=version, operation="UPDATE"
            )
        )

    suspend = statement(c, StatementAction.SUSPEND, 3)
    router = ex.router()
    async with running(router):
        await ex.publish(ex.seal(create))
        assert len(await ex.feed(c, a, expect=1)) == 1
        # C suspended; C alone resumed: still suspended, the router still denies C.
        router.view = view(suspend, statement(c, StatementAction.RESUME, 2))
        await ex.publish(update(2))
        await ex.feed(b, a, expect=2)  # b's copy is in the same transaction as c's decision
        # Both resumed: C receives again.
        both = view(
            suspend,
            statement(c, StatementAction.RESUME, 2),
            statement(a, StatementAction.RESUME, 1),
        )
        router.view = both
        await ex.publish(update(3))
        await ex.feed(b, a, expect=3)
        to_c = await ex.feed(c, a, expect=2)

    assert [e.header.version for e in to_c] == [1, 3]


def _members(box: Sandbox, names: Sequence[str]) -> TrustStore:
    return replace(
        box.trust, participants=MappingProxyType({p: box.trust.participants[p] for p in names})
    )


def _write_governed(
    path: Path,
    box: Sandbox,
    names: Sequence[str],
    serial: int,
    approvers: Sequence[str],
    *,
    days: int = 30,
) -> None:
    """A governed store of ``names`` valid from a day ago for ``days`` more days."""
    store = _members(box, names)
    now = datetime.now(UTC)
    document = governance_document(
        store,
        yaml.safe_load(trust_store_yaml(store)),
        serial=serial,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=days),
        entry_keys={p: (box.key_ids[p], box.keys[p]) for p in names},
        approvers={p: (box.key_ids[p], box.keys[p]) for p in approvers},
    )
    path.write_text(yaml.safe_dump(document, sort_keys=False))


async def test_a_running_router_refuses_an_under_signed_store_and_routes_on_under_the_last(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    """...and the auditor, given both stores, replays the period across the change."""
    started = datetime.now(UTC) - timedelta(minutes=1)
    ids = random_ids(3)
    a, b, c = ids
    full = make_sandbox(ids, open_agreements([(a, b)]))
    trust_path, agreements_path = tmp_path / "trust.yaml", tmp_path / "agreements.yaml"
    _write_governed(trust_path, full, (a, b), 1, (a, b))
    kept_first = read_governed(trust_path)  # as the auditor keeps each store in force
    trust_file = TrustFile(trust_path)
    before = trust_file.reload()
    assert trust_file.governance is not None
    agreements_path.write_text(_signed(full, [(a, b)]))
    await create_topics(kafka.admin, ids)
    source = AgreementSource(agreements_path, before.participants, tmp_path / "history")
    ex = Exchange(kafka, replace(full, trust=before, agreements=source.load()), ids)
    router = ex.router(topic_refresh=0.5)
    first = StoreReference.of(trust_file.governance)
    router.view = PolicyView.build(before, router.view.agreements, trust_file.governance)
    policy = PolicySource(trust_path, source, before, trust_file, router.metrics)
    router.sources = (policy,)
    digest = router.view.agreements.digest

    async with running(router):
        await ex.publish(ex.seal(ex.alert(AlertType.WANTED_PERSON, a)))
        await ex.feed(b, a, expect=1)
        # The hub operator admits c with c's approval alone: 1 of the 2 active participants.
        _write_governed(trust_path, full, ids, 2, (c,))
        await eventually(
            lambda: router.metrics.value("trust_rejected_total") == 1,
            what="the router refuses the under-signed store",
        )
        assert c not in router.view.trust.participants
        await ex.publish(ex.seal(ex.alert(AlertType.WANTED_PERSON, a)))
        delivered = await ex.feed(b, a, expect=2)  # routing goes on under serial 1
        # Approved by a and b: taken, and published with the agreement set.
        _write_governed(trust_path, full, ids, 2, (a, b))
        await eventually(
            lambda: c in router.view.trust.participants, what="the router takes serial 2"
        )
        assert router.metrics.value("trust_rejected_total") == 1
        await ex.publish(ex.seal(ex.alert(AlertType.WANTED_PERSON, a)))
        await ex.feed(b, a, expect=3)  # decided under serial 2

    assert len(delivered) == 2
    assert trust_file.governance is not None
    second = StoreReference.of(trust_file.governance)
    async with KafkaReader(ex.settings) as reader:
        records = [
            record
            for tp in await reader.partitions(naming.AGREEMENTS_TOPIC)
            for record in await reader.read(tp, 0, await reader.end(tp))
        ]
    published = [
        StoreReference.parse(record.header(TRUST_STORE_HEADER) or b"")
        for record in records
        if record.key == digest.encode()
    ]
    assert published == [first, second]
    assert second.serial == 2

    # The auditor replays the period across the change, each record under the store in
    # force when it was decided: clean with both stores; with serial 2 alone, serial 1
    # (under which the first decisions were made) is named as not given.
    kept_second = read_governed(trust_path)
    window = Window(started, datetime.now(UTC) + timedelta(minutes=1))

    async def audit(*given: GovernedStore) -> Verdict:
        return await replay(
            ex.settings,
            given[-1].store,
            ReplayRequest(window, participant=a),
            progress=Progress(every=1e9),
            governance=given,
        )

    both = await audit(kept_first, kept_second)
    assert both.clean, both.violations
    assert both.stats.decisions == 3
    (missing,) = (await audit(kept_second)).violations
    assert missing.code is ViolationCode.TRUST_STORE_MISMATCH
    assert "serial 1" in missing.detail


async def test_a_router_routes_nothing_under_an_expired_store_and_resumes_under_the_next(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    ids = random_ids(2)
    a, b = ids
    box = make_sandbox(ids, open_agreements([(a, b)]))
    trust_path, agreements_path = tmp_path / "trust.yaml", tmp_path / "agreements.yaml"
    _write_governed(trust_path, box, ids, 1, ids, days=1)
    trust_file = TrustFile(trust_path)
    trust = trust_file.reload()
    agreements_path.write_text(_signed(box, [(a, b)]))
    await create_topics(kafka.admin, ids)
    source = AgreementSource(agreements_path, trust.participants, tmp_path / "history")
    ex = Exchange(kafka, replace(box, agreements=source.load()), ids)
    router = ex.router(topic_refresh=0.5)
    router.view = PolicyView.build(trust, router.view.agreements, trust_file.governance)
    router.sources = (PolicySource(trust_path, source, trust, trust_file, router.metrics),)
    # The router's clock, moved two days on below: past the store's validity window.
    ahead = [timedelta(0)]
    router.clock = lambda: datetime.now(UTC) + ahead[0]

    async with running(router):
        await ex.publish(ex.seal(ex.alert(AlertType.WANTED_PERSON, a)))
        await ex.feed(b, a, expect=1)
        ahead[0] = timedelta(days=2)
        late = ex.seal(ex.alert(AlertType.WANTED_PERSON, a))
        await ex.publish(late)
        await eventually(
            lambda: router.metrics.value("trust_store_expired") == 1,
            what="the router holds routing under the expired store",
        )
        held = await ex.feed(b, a)  # everything committed so far: the copy is not there
        audit = [decode_record(v)[1] for v in await ex.read(naming.audit_topic(a))]
        assert router.held_for_store
        # A new governed store (serial 2), signed by both entries' keys: routing resumes.
        _write_governed(trust_path, box, ids, 2, ids)
        delivered = await ex.feed(b, a, expect=2)
        await eventually(
            lambda: router.metrics.value("trust_store_expired") == 0,
            what="the router routes again",
        )

    assert [e.header.message_id for e in held] == [held[0].header.message_id]
    assert late.header.message_id not in {e.header.message_id for e in held}
    assert [r["kind"] for r in audit].count(AuditKind.DECISION) == 1  # nothing decided
    assert delivered[-1].header.message_id == late.header.message_id
    assert trust_file.governance is not None
    assert trust_file.governance.serial == 2
    assert not router.held_for_store
