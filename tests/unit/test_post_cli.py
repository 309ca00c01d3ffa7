"""``post check|list|status`` read only the store: exit 0 on a hit, 1 otherwise; fr or en."""

from __future__ import annotations

from pathlib import Path

import pytest

from border_exchange.adapters.post_store import PostStore
from border_exchange.cli.main import main
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import redact
from tests.clock import days
from tests.unit.test_post_store import accepted, sealed


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "post.db"
    with PostStore.open(path) as store:
        wanted = sealed(
            sample_alert(AlertType.WANTED_PERSON, language="fr"),
            "wp-1",
            issued=days(-30),
        )
        vehicle = sealed(sample_alert(AlertType.VEHICLE_NOTICE), "vn-1", issued=days(-30))
        store.apply([accepted(redact(wanted, {"identity", "offence", "contact"}), 0)])
        store.apply([accepted(vehicle, 1)])
        store.record_sync({("bx.COD.from.CAF", 0): 2})
    return path


def test_a_hit_exits_0_and_prints_labels_in_french_with_content_as_written(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["post", "check", "--db", str(db), "--name", "jean baptiste ngakola", "--lang", "fr"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "SIGNALEMENT TROUVÉ" in out
    assert "Personne recherchée (WANTED_PERSON)" in out
    assert "Conduite à tenir: Arrêter (ARREST)" in out
    assert "Avertissements: ARMÉ, VIOLENT" in out
    assert "Rubriques non communiquées: documents d'identité" in out
    assert "Meurtre d'un commerçant au marché PK5 de Bangui" in out
    assert "CA-0457821" not in out  # the documents section was withheld


def test_english_labels_and_plate_normalisation(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["post", "check", "--db", str(db), "--plate", "bg-4512-a", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "Vehicle notice (VEHICLE_NOTICE)" in out
    assert "Action on hit: Seize (SEIZE)" in out


def test_no_hit_exits_1(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["post", "check", "--db", str(db), "--document", "XX-1", "--lang", "fr"]) == 1
    assert capsys.readouterr().out.strip() == "Aucun signalement"


def test_list_and_status(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["post", "list", "--db", str(db), "--lang", "en"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("2 active alert(s)")
    assert "CAF\tvn-1\tv1\tVEHICLE_NOTICE\tSEIZE" in listing
    assert main(["post", "status", "--db", str(db), "--lang", "en"]) == 0
    status = capsys.readouterr().out
    assert "Last sync: " in status
    assert "Lag: 0" in status


def test_a_missing_store_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["post", "list", "--db", str(tmp_path / "none.db")]) == 1
    assert "no post store at" in capsys.readouterr().err
