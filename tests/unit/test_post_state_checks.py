"""A bootstrap checks its state records as the post checks feed records.

The state's Ed25519 checks run in batches on a worker thread (``signature_batch``) while
the next records are decoded; each outcome must be the one ``outcome_of`` gives the same
record read from the feed, the refusal's reason included, and name the state topic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from border_exchange.adapters.post_store import Accepted, Outcome, PostStore, Rejected
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import encode_envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signature_batch import signature_checks
from border_exchange.services import check_pool, post_state
from border_exchange.services.post import outcome_of
from border_exchange.services.post_state import StateStart
from tests.unit.test_post_store import FEED, sealed, trust

STATE = "bx.COD.state.from.CAF"


def _records() -> list[Any]:
    good = [sealed(sample_alert(t), alert_id=f"a-{t.value}") for t in AlertType]
    envelope = sealed(sample_alert(AlertType.WANTED_PERSON), alert_id="forged")
    forged = dataclasses.replace(envelope, signature=bytes(64))  # digests fine, signature not
    section = envelope.sections[0]
    assert section.content is not None
    tampered = dataclasses.replace(
        envelope,
        sections=(dataclasses.replace(section, content=section.content[:-1] + b"X"),
                  *envelope.sections[1:]),
    )  # fmt: skip
    values = [encode_envelope(e) for e in (*good, forged, tampered)] + [b"\xc3\x01garbage"]
    return [
        ConsumerRecord(STATE, 0, n, 0, 0, b"k", v, None, 0, 0, []) for n, v in enumerate(values)
    ]


@pytest.mark.parametrize("where", ["worker-thread", "calling-thread", "worker-process"])
def test_state_records_get_the_feed_records_outcomes(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        post_state,
        "signature_checks",
        functools.partial(signature_checks, threaded=where == "worker-thread"),
    )
    if where == "worker-process":
        monkeypatch.setattr(check_pool, "POOL_FROM", 1)
        monkeypatch.setattr(check_pool, "CHUNK", 4)  # several chunks, answered in order
    records = _records()
    with PostStore.open(tmp_path / "post.db") as store:
        starter = StateStart(None, "COD", store, trust(), outcome_of)  # type: ignore[arg-type]  # no broker
        outcomes = asyncio.run(starter._verified(records, FEED))
        assert (starter._pool is not None) is (where == "worker-process")
        if starter._pool is not None:
            starter._pool.close()
    expected = [outcome_of(dataclasses.replace(r, topic=FEED), trust(), "COD") for r in records]
    assert [type(o) for o in outcomes] == [Accepted] * 3 + [Rejected] * 3
    assert [o.reason for o in outcomes if isinstance(o, Rejected)] == [
        o.reason for o in expected if isinstance(o, Rejected)
    ]
    assert outcomes[3].reason.startswith("BAD_SIGNATURE")  # type: ignore[union-attr]
    for got, want in zip(outcomes, expected, strict=True):
        assert got.topic == STATE
        assert (got.partition, got.offset) == (want.partition, want.offset)
        if isinstance(got, Accepted):
            assert isinstance(want, Accepted)
            assert (got.envelope, got.sections, got.raw) == (want.envelope, want.sections, want.raw)


def test_a_bootstrap_stores_only_what_verified(tmp_path: Path) -> None:
    records = _records()
    with PostStore.open(tmp_path / "post.db") as store:
        starter = StateStart(None, "COD", store, trust(), outcome_of)  # type: ignore[arg-type]  # no broker
        outcomes: list[Outcome] = asyncio.run(starter._verified(records, FEED))
        held = [f"a-{t.value}" for t in AlertType]
        applied, erased = store.bootstrap("CAF", (FEED, 0), outcomes, held, len(records))
        assert (applied.stored, applied.rejected, erased) == (3, 3, 0)
        assert sorted(a.alert_id for a in store.active()) == sorted(held)
        assert store.version_of("CAF", "forged") is None
