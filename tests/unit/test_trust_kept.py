"""Posts keep the last valid governed store across restarts; the auditor needs a governed one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from border_exchange.adapters.post_store import PostStore
from border_exchange.adapters.trust_file import TrustFile, load_governed, load_kept
from border_exchange.cli.main import main
from border_exchange.demo.sandbox import Sandbox, trust_store_yaml
from border_exchange.errors import TrustStoreError
from tests.unit.test_trust_governance import (
    NOW,
    _keys,
    _members,
    _write,
    box,  # noqa: F401  # a fixture, used by name
    genesis,  # noqa: F401  # a fixture, used by name
)

THREE = ("CAF", "COD", "SSD")


def test_a_post_refuses_an_older_or_ungoverned_store_at_restart_and_keeps_its_own(
    box: Sandbox,  # noqa: F811  # the fixture
    genesis: TrustFile,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    serial_1 = genesis.path.read_text()
    four = ("CAF", "COD", "SSD", "UGA")
    with PostStore.open(tmp_path / "post.db") as store:
        assert set(load_kept(genesis.path, store).participants) == set(THREE)
        _write(genesis.path, _members(box, four), 2, _keys(box, four), _keys(box, THREE))
        assert "UGA" in load_kept(genesis.path, store).participants  # serial 2 kept now

        genesis.path.write_text(serial_1)  # the operator hands the post the older store
        with structlog.testing.capture_logs() as logs:
            trust = load_kept(genesis.path, store)
        assert "UGA" in trust.participants
        [refused] = [e for e in logs if e["event"] == "trust.rejected"]
        assert "serial 1 is not after the store in force (2)" in refused["error"]
        assert refused["kept_serial"] == 2

        genesis.path.write_text(trust_store_yaml(_members(box, ("CAF", "COD"))))
        with structlog.testing.capture_logs() as logs:
            trust = load_kept(genesis.path, store)
        assert set(trust.participants) == set(four)
        assert "a store without signatures cannot replace it" in logs[-1]["error"]


def test_a_post_with_nothing_kept_takes_an_ungoverned_store_and_refuses_an_invalid_one(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text(trust_store_yaml(_members(box, THREE)))
    with PostStore.open(tmp_path / "post.db") as store:
        assert set(load_kept(path, store).participants) == set(THREE)
        assert store.kept_trust() is None  # nothing governed to keep
        _write(path, _members(box, THREE), 1, _keys(box, THREE), _keys(box, ("CAF",)))
        with pytest.raises(TrustStoreError, match="needs the approval of 2 of the 3"):
            load_kept(path, store)


def test_a_kept_store_past_its_window_is_no_fallback(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    path = tmp_path / "trust.yaml"
    keys = _keys(box, THREE)
    with PostStore.open(tmp_path / "post.db") as store:
        _write(path, _members(box, THREE), 1, keys, keys, until=NOW - timedelta(hours=1))
        store.keep_trust(path.read_text())  # kept while it was valid; it has expired since
        _write(path, _members(box, ("CAF", "COD")), 2, keys, _keys(box, ("CAF",)))
        with pytest.raises(
            TrustStoreError, match=r"needs the approval.*kept \(serial 1\) is stale"
        ):
            load_kept(path, store)


def test_the_auditor_refuses_an_ungoverned_or_under_signed_store(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text(trust_store_yaml(_members(box, THREE)))
    with pytest.raises(TrustStoreError, match="the store is not governed"):
        load_governed(path)
    _write(path, _members(box, THREE), 1, _keys(box, THREE), _keys(box, ("SSD",)))
    with pytest.raises(TrustStoreError, match="approved by SSD"):
        load_governed(path)
    _write(path, _members(box, THREE), 1, _keys(box, THREE), _keys(box, THREE))
    store, governance = load_governed(path)
    assert governance.serial == 1
    assert set(store.participants) == set(THREE)


def test_audit_replay_refuses_an_ungoverned_store_before_reading_anything(
    box: Sandbox,  # noqa: F811  # the fixture
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text(trust_store_yaml(_members(box, THREE)))
    config = tmp_path / "auditor.yaml"
    config.write_text("kafka: {bootstrap: '127.0.0.1:1'}\n")
    start = (NOW - timedelta(days=1)).isoformat()
    argv = ["audit", "replay", "--from", start, "--to", NOW.isoformat()]
    assert main([*argv, "--trust", str(path), "--config", str(config)]) == 1
    assert "the store is not governed" in capsys.readouterr().err
