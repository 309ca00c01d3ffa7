"""Loading, watching and recording the agreement-set file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from border_exchange.adapters.agreement_files import AgreementHistory, AgreementSource
from border_exchange.domain.agreements import AgreementSet, parse_agreement_set
from border_exchange.errors import PolicyError

PARTICIPANTS = ("CAF", "COD", "SSD")

VALID = """
version: "{label}"
agreements:
  - id: COD-CAF
    parties: [COD, CAF]
    status: {status}
    effective_from: 2026-01-01T00:00:00Z
    flows:
      - from: COD
        to: CAF
        types:
          WANTED_PERSON: {{sections: [identity], max_handling: H1}}
"""


def _valid(label: str = "one", status: str = "active") -> str:
    return VALID.format(label=label, status=status)


UNKNOWN_PARTY = _valid("bad").replace("[COD, CAF]", "[COD, UGA]").replace("to: CAF", "to: UGA")


def _write(path: Path, text: str) -> None:
    """Replace the file the way editors and deploy tools do: write aside, then rename."""
    aside = path.with_suffix(".new")
    aside.write_text(text)
    os.replace(aside, path)


@pytest.fixture
def source(tmp_path: Path) -> AgreementSource:
    path = tmp_path / "agreements.yaml"
    _write(path, _valid())
    return AgreementSource(path, PARTICIPANTS, tmp_path / "history")


def test_load_validates_records_and_puts_in_force(source: AgreementSource) -> None:
    aset = source.load()
    assert source.current == aset
    assert source.history.digests() == (aset.digest,)
    stored = source.history.path_of(aset.digest)
    assert stored.read_bytes() == aset.canonical_bytes()
    assert source.fetch(aset.digest) == aset


def test_load_refuses_a_set_with_semantic_problems(source: AgreementSource) -> None:
    _write(source.path, UNKNOWN_PARTY)
    with pytest.raises(PolicyError, match=r"'UGA' is not a participant.*UNKNOWN_PARTICIPANT"):
        source.load()
    assert source.current is None
    assert source.history.digests() == ()


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    source = AgreementSource(tmp_path / "absent.yaml", PARTICIPANTS, tmp_path / "history")
    with pytest.raises(PolicyError, match="cannot read agreement set"):
        source.load()


def test_a_valid_new_version_replaces_the_old(source: AgreementSource) -> None:
    first = source.load()
    _write(source.path, _valid("two", status="suspended"))
    second = source.poll()
    assert second is not None
    assert second.label == "two"
    assert source.current == second
    assert set(source.history.digests()) == {first.digest, second.digest}


def test_an_invalid_file_keeps_the_previous_set_and_is_reported_loudly(
    source: AgreementSource,
) -> None:
    first = source.load()
    _write(source.path, UNKNOWN_PARTY)
    with capture_logs() as logs:
        assert source.poll() is None
    assert source.current == first
    (entry,) = logs
    assert entry["event"] == "agreements.rejected"
    assert entry["log_level"] == "error"
    assert entry["kept"] == first.digest
    assert any("UNKNOWN_PARTICIPANT" in problem for problem in entry["problems"])
    assert source.history.digests() == (first.digest,)


def test_a_malformed_file_keeps_the_previous_set(source: AgreementSource) -> None:
    first = source.load()
    _write(source.path, "version: [unclosed\n")
    with capture_logs() as logs:
        assert source.poll() is None
    assert source.current == first
    assert logs[0]["event"] == "agreements.rejected"
    assert "not valid YAML" in logs[0]["problems"][0]


def test_a_vanished_file_keeps_the_previous_set(source: AgreementSource) -> None:
    first = source.load()
    source.path.unlink()
    with capture_logs() as logs:
        assert source.poll() is None
    assert source.current == first
    assert logs[0]["event"] == "agreements.unreadable"


def test_an_unchanged_or_equivalent_file_is_not_a_new_version(source: AgreementSource) -> None:
    source.load()
    assert source.poll() is None
    _write(source.path, "# reformatted\n" + _valid())
    assert source.poll() is None


def test_the_history_is_write_once_and_content_addressed(tmp_path: Path) -> None:
    history = AgreementHistory(tmp_path / "history")
    aset = parse_agreement_set(_valid())
    path = history.record(aset)
    assert path.name == f"{aset.digest}.yaml"
    before = path.stat().st_mtime_ns
    assert history.record(aset) == path
    assert path.stat().st_mtime_ns == before
    assert [p.name for p in history.directory.iterdir()] == [path.name]  # no temporary left


def test_the_history_refuses_a_corrupt_entry_and_unknown_digests(tmp_path: Path) -> None:
    history = AgreementHistory(tmp_path)
    aset = parse_agreement_set(_valid())
    other = parse_agreement_set(_valid("other"))
    history.path_of(aset.digest).write_bytes(other.canonical_bytes())
    with pytest.raises(PolicyError, match="corrupt"):
        history.fetch(aset.digest)
    with pytest.raises(PolicyError, match="no agreement set"):
        history.fetch("0" * 64)
    with pytest.raises(PolicyError, match="not an agreement-set digest"):
        history.fetch("../agreements")


async def test_watch_calls_back_with_each_new_valid_version(source: AgreementSource) -> None:
    seen: list[AgreementSet] = []
    changed = asyncio.Event()

    async def on_change(aset: AgreementSet) -> None:
        seen.append(aset)
        changed.set()

    watcher = asyncio.create_task(source.watch(on_change, interval=0.01))
    try:
        await asyncio.wait_for(changed.wait(), timeout=5)
        changed.clear()
        with capture_logs() as logs:
            _write(source.path, UNKNOWN_PARTY)
            for _ in range(500):  # the rejection is logged within a few polls
                if logs:
                    break
                await asyncio.sleep(0.01)
        _write(source.path, _valid("three"))
        await asyncio.wait_for(changed.wait(), timeout=5)
    finally:
        watcher.cancel()
    assert [aset.label for aset in seen] == ["one", "three"]
    assert logs[0]["event"] == "agreements.rejected"
    assert source.current == seen[-1]
