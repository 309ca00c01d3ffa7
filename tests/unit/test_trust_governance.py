"""A trust store no single operator can rewrite: signed entries, quorum, validity, last valid."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from nacl.signing import SigningKey

from border_exchange.adapters.agreement_files import AgreementSource
from border_exchange.adapters.metrics import Metrics
from border_exchange.adapters.trust_file import TrustFile, load_trust_store
from border_exchange.bootstrap import PolicySource
from border_exchange.cli.main import main
from border_exchange.demo.sandbox import Sandbox, make_sandbox, trust_store_yaml
from border_exchange.domain.trust import PublicKey, TrustStore
from border_exchange.domain.trust_governance import governance_document
from border_exchange.errors import TrustStoreError

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def box() -> Sandbox:
    return make_sandbox(
        ["CAF", "COD", "SSD", "UGA"], "version: v\nagreements: []\n", start=NOW - timedelta(days=30)
    )


def _keys(box: Sandbox, names: Sequence[str]) -> dict[str, tuple[str, SigningKey]]:
    return {pid: (box.key_ids[pid], box.keys[pid]) for pid in names}


def _members(box: Sandbox, names: Sequence[str]) -> TrustStore:
    return replace(
        box.trust,
        participants=MappingProxyType({p: box.trust.participants[p] for p in names}),
    )


def _write(
    path: Path,
    store: TrustStore,
    serial: int,
    entry_keys: Mapping[str, tuple[str, SigningKey]],
    approvers: Mapping[str, tuple[str, SigningKey]],
    *,
    until: datetime | None = None,
) -> None:
    document = governance_document(
        store,
        yaml.safe_load(trust_store_yaml(store)),
        serial=serial,
        valid_from=NOW - timedelta(days=1),
        valid_until=until or NOW + timedelta(days=30),
        entry_keys=entry_keys,
        approvers=approvers,
    )
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def genesis(box: Sandbox, tmp_path: Path) -> TrustFile:
    """CAF, COD and SSD, each entry self-signed, approved by all three."""
    path = tmp_path / "trust.yaml"
    three = ("CAF", "COD", "SSD")
    _write(path, _members(box, three), 1, _keys(box, three), _keys(box, three))
    trust_file = TrustFile(path)
    trust_file.reload()
    return trust_file


def test_a_first_store_needs_self_signed_entries_and_a_majority(
    box: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "trust.yaml"
    three = ("CAF", "COD", "SSD")
    _write(path, _members(box, three), 1, _keys(box, three), _keys(box, ("CAF",)))
    with pytest.raises(TrustStoreError, match="needs the approval of 2 of the 3 active"):
        TrustFile(path).reload()
    _write(path, _members(box, three), 1, _keys(box, ("CAF", "COD")), _keys(box, three))
    with pytest.raises(TrustStoreError, match="the entry of SSD is not signed"):
        TrustFile(path).reload()


def test_an_admission_under_signed_is_refused_and_the_last_valid_store_stays(
    box: Sandbox, genesis: TrustFile
) -> None:
    before = genesis.current
    four = ("CAF", "COD", "SSD", "UGA")
    _write(genesis.path, _members(box, four), 2, _keys(box, four), _keys(box, ("CAF",)))
    with pytest.raises(TrustStoreError, match=r"approved by CAF$"):
        genesis.reload()
    assert genesis.current is before
    assert before is not None
    assert "UGA" not in before.participants

    _write(genesis.path, _members(box, four), 2, _keys(box, four), _keys(box, ("CAF", "SSD")))
    assert "UGA" in genesis.reload().participants


def test_a_suspension_or_removal_needs_the_quorum_too(box: Sandbox, genesis: TrustFile) -> None:
    two = ("CAF", "COD")
    _write(genesis.path, _members(box, two), 2, _keys(box, two), _keys(box, ("COD",)))
    with pytest.raises(TrustStoreError, match="needs the approval of 2 of the 3"):
        genesis.reload()
    three = ("CAF", "COD", "SSD")
    ssd = replace(box.trust.participants["SSD"], status="suspended")
    store = replace(
        _members(box, three),
        participants=MappingProxyType({**_members(box, three).participants, "SSD": ssd}),
    )
    _write(genesis.path, store, 2, _keys(box, three), _keys(box, ("CAF",)))
    with pytest.raises(TrustStoreError, match="needs the approval"):
        genesis.reload()
    _write(genesis.path, store, 2, _keys(box, three), _keys(box, ("CAF", "COD")))
    assert genesis.reload().participants["SSD"].status == "suspended"


def _rotated(box: Sandbox) -> tuple[TrustStore, SigningKey]:
    new_key = SigningKey.generate()
    caf = box.trust.participants["CAF"]
    public = PublicKey("CAF", "CAF-NEXT", bytes(new_key.verify_key), NOW, NOW + timedelta(days=700))
    three = _members(box, ("CAF", "COD", "SSD"))
    members = {**three.participants, "CAF": replace(caf, keys=(*caf.keys, public))}
    return replace(three, participants=MappingProxyType(members)), new_key


def test_a_rotation_signed_by_the_key_it_replaces_is_accepted_without_a_quorum(
    box: Sandbox, genesis: TrustFile
) -> None:
    store, _ = _rotated(box)
    keys = _keys(box, ("CAF", "COD", "SSD"))
    _write(genesis.path, store, 2, keys, {})
    assert [k.key_id for k in genesis.reload().participants["CAF"].keys] == [
        box.key_ids["CAF"],
        "CAF-NEXT",
    ]


def test_a_rotation_signed_only_by_the_new_key_is_refused(box: Sandbox, genesis: TrustFile) -> None:
    store, new_key = _rotated(box)
    keys = {**_keys(box, ("COD", "SSD")), "CAF": ("CAF-NEXT", new_key)}
    _write(genesis.path, store, 2, keys, {})
    with pytest.raises(TrustStoreError, match="entry of CAF is not signed by a key it held"):
        genesis.reload()


def test_an_operator_edit_of_an_entry_breaks_its_signature(
    box: Sandbox, genesis: TrustFile
) -> None:
    three = ("CAF", "COD", "SSD")
    _write(genesis.path, _members(box, three), 2, _keys(box, three), {})
    document = yaml.safe_load(genesis.path.read_text())
    document["participants"][0]["posts"] = ["operator-post"]
    genesis.path.write_text(yaml.safe_dump(document))
    with pytest.raises(TrustStoreError, match="the entry of CAF is not signed by a key it held"):
        genesis.reload()


def test_stale_older_and_unsigned_stores_are_refused(box: Sandbox, genesis: TrustFile) -> None:
    three = ("CAF", "COD", "SSD")
    keys = _keys(box, three)
    _write(genesis.path, _members(box, three), 2, keys, keys, until=NOW - timedelta(hours=1))
    with pytest.raises(TrustStoreError, match="stale: valid from"):
        genesis.reload()
    _write(genesis.path, _members(box, ("CAF", "COD")), 1, keys, keys)
    with pytest.raises(TrustStoreError, match="serial 1 is not after the store in force"):
        genesis.reload()
    genesis.path.write_text(trust_store_yaml(_members(box, three)))
    with pytest.raises(TrustStoreError, match="a store without signatures cannot replace it"):
        genesis.reload()
    assert genesis.current is not None
    assert set(genesis.current.participants) == set(three)


def test_the_router_keeps_the_last_valid_store_and_counts_the_refusal(
    box: Sandbox, genesis: TrustFile, tmp_path: Path
) -> None:
    agreements = tmp_path / "agreements.yaml"
    agreements.write_text(box.agreements_text)
    assert genesis.current is not None
    source = AgreementSource(agreements, genesis.current.participants, tmp_path / "history")
    source.load()
    metrics = Metrics()
    policy = PolicySource(genesis.path, source, genesis.current, genesis, metrics)
    four = ("CAF", "COD", "SSD", "UGA")
    _write(genesis.path, _members(box, four), 2, _keys(box, four), _keys(box, ("UGA",)))
    os.utime(genesis.path, ns=(1, 1))  # the router notices a change by its stamp
    assert policy() is None
    assert metrics.value("trust_rejected_total") == 1
    assert "UGA" not in policy.trust.participants

    _write(genesis.path, _members(box, four), 2, _keys(box, four), _keys(box, ("CAF", "COD")))
    view = policy()
    assert view is not None
    assert "UGA" in view.trust.participants
    assert metrics.value("trust_rejected_total") == 1


def test_officers_sign_the_store_on_their_machines_and_the_hub_combines(
    box: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BX_KEY_PASSPHRASE", "officer passphrase")
    paths = box.write(tmp_path / "box", b"officer passphrase")

    def draft(names: Sequence[str], serial: int) -> Path:
        document = yaml.safe_load(trust_store_yaml(_members(box, names)))
        document["governance"] = {
            "serial": serial,
            "valid_from": (NOW - timedelta(days=1)).isoformat(),
            "valid_until": (NOW + timedelta(days=90)).isoformat(),
        }
        path = tmp_path / f"draft-{serial}.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    def signed(path: Path, pid: str) -> str:
        out = tmp_path / f"{path.stem}-{pid}.yaml"
        argv = ["keys", "sign-store", str(path), "--as", pid, "--key", str(paths[f"key:{pid}"])]
        assert main([*argv, "--key-id", box.key_ids[pid], "--out", str(out)]) == 0
        return str(out)

    three = ("CAF", "COD", "SSD")
    first = draft(three, 1)
    store = tmp_path / "trust.yaml"
    files = [signed(first, pid) for pid in three]
    assert main(["keys", "combine-store", str(first), *files, "--out", str(store)]) == 0
    assert set(load_trust_store(store).participants) == set(three)

    four = ("CAF", "COD", "SSD", "UGA")
    second = draft(four, 2)
    out = tmp_path / "trust-2.yaml"
    few = [signed(second, pid) for pid in ("SSD", "UGA")]  # UGA's own approval does not count
    argv = ["keys", "combine-store", str(second), "--current", str(store), "--out", str(out)]
    capsys.readouterr()
    assert main([*argv[:3], *few, *argv[3:]]) == 1
    assert "needs the approval of 2 of the 3 active participants" in capsys.readouterr().out
    assert not out.exists()
    entries = [signed(second, pid) for pid in ("CAF", "COD")]
    assert main([*argv[:3], *few, *entries, *argv[3:]]) == 0
    assert "UGA" in load_trust_store(out).participants
