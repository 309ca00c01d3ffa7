"""A bootstrap checks its state records as the post checks feed records.

The state's Ed25519 checks run in batches on a worker thread (``signature_batch``) while
the next records are decoded; each outcome must be the one ``outcome_of`` gives the same
record read from the feed, the refusal's reason included, and name the state topic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from border_exchange.adapters.post_store import Accepted, PostStore, Prepared, Rejected, prepare
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
    # the worker processes also prepare each accepted record for the store
    accepted = Prepared if where == "worker-process" else Accepted
    assert [type(o) for o in outcomes] == [accepted] * 3 + [Rejected] * 3
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
        elif isinstance(got, Prepared):
            assert isinstance(want, Accepted)
            mine = prepare(dataclasses.replace(want, topic=STATE))
            # the same row, search rows and sections; sealed at rest under other keys
            same = ("head", "rest", "withheld", "plates", "vins", "documents", "names")
            assert [getattr(got, f) for f in same] == [getattr(mine, f) for f in same]
            assert got.at_rest is not None
            assert mine.at_rest is not None
            sealed = json.loads(got.at_rest.sections)
            assert sealed.keys() == json.loads(mine.at_rest.sections).keys()
            assert got.at_rest.ref != mine.at_rest.ref


@pytest.mark.parametrize("where", ["post-process", "worker-process"])
def test_a_bootstrap_stores_only_what_verified(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "worker-process":
        if not check_pool.available():
            pytest.skip("no fork start method here")
        monkeypatch.setattr(check_pool, "POOL_FROM", 1)
        monkeypatch.setattr(check_pool, "CHUNK", 4)
    records = _records()
    with PostStore.open(tmp_path / "post.db") as store:
        starter = StateStart(None, "COD", store, trust(), outcome_of)  # type: ignore[arg-type]  # no broker
        checked = asyncio.run(starter._verified(records, FEED))
        if starter._pool is not None:
            starter._pool.close()
        accepted = Prepared if where == "worker-process" else Accepted
        assert sum(isinstance(o, accepted) for o in checked) == 3
        held = [f"a-{t.value}" for t in AlertType]
        applied, erased = store.bootstrap("CAF", (FEED, 0), checked, held, len(records))
        assert (applied.stored, applied.rejected, erased) == (3, 3, 0)
        assert sorted(a.alert_id for a in store.active()) == sorted(held)
        assert store.version_of("CAF", "forged") is None
        # sealed at rest where they were prepared, opened here with the keys kept here
        wanted = store.get("CAF", f"a-{AlertType.WANTED_PERSON.value}")
        assert wanted is not None
        outcomes = [outcome_of(dataclasses.replace(r, topic=FEED), trust(), "COD") for r in records]
        expected = next(o for o in outcomes if isinstance(o, Accepted)
                        and o.envelope.header.alert_id == wanted.alert_id)  # fmt: skip
        assert set(wanted.sections) == set(expected.sections)
        assert wanted.sections["identity"] == json.loads(
            json.dumps(expected.sections["identity"], default=str)
        )
        # and found by their search rows, made there too
        vehicle = next(
            o for o in outcomes
            if isinstance(o, Accepted)
            and o.envelope.header.alert_type is AlertType.VEHICLE_NOTICE
        )  # fmt: skip
        plate = vehicle.sections["vehicle"]["plate"]
        assert [a.alert_id for a in store.find_plate(plate)] == [vehicle.envelope.header.alert_id]
        name = expected.sections["identity"]["family_names"][0]
        assert [a.alert_id for a in store.find_name(name)] == [wanted.alert_id]
