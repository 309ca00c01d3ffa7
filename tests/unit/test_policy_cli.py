"""``border-exchange policy check`` and ``policy explain``."""

from __future__ import annotations

from pathlib import Path

import pytest

from border_exchange.cli.main import main

TRUST = """
version: 1
participants:
  - {id: CAF, name: Police centrafricaine, kind: NATIONAL_SERVICE}
  - {id: COD, name: Police nationale congolaise, kind: NATIONAL_SERVICE}
  - {id: SSD, name: South Sudan National Police Service, kind: NATIONAL_SERVICE}
  - {id: UN-MONUSCO, name: MONUSCO police component, kind: UN_COMPONENT}
"""

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agreements.yaml"

BROKEN = """
version: broken
agreements:
  - id: COD-UGA
    parties: [COD, UGA]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    effective_until: 2025-01-01T00:00:00Z
    flows:
      - from: COD
        to: UGA
        types:
          STOLEN_ART: {sections: all, max_handling: H1}
          VEHICLE_NOTICE: {sections: [vehicle, photo], max_handling: H1}
  - id: COD-CAF-A
    parties: [COD, CAF]
    status: active
    effective_from: 2026-01-01T00:00:00Z
  - id: COD-CAF-B
    parties: [CAF, COD]
    status: suspended
    effective_from: 2026-06-01T00:00:00Z
"""


@pytest.fixture
def trust(tmp_path: Path) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text(TRUST)
    return path


def test_check_accepts_the_example_set(trust: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(EXAMPLE), "--trust", str(trust)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 3 agreements, label 2026-11-01, digest ")


def test_check_reports_every_problem_and_fails(
    tmp_path: Path, trust: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agreements = tmp_path / "agreements.yaml"
    agreements.write_text(BROKEN)
    assert main(["policy", "check", str(agreements), "--trust", str(trust)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"5 problem(s) in {agreements}"
    codes = sorted(line.rsplit("[", 1)[1].rstrip("]") for line in lines[:-1])
    assert codes == [
        "DATES_CONTRADICT",
        "OVERLAP",
        "UNKNOWN_PARTICIPANT",
        "UNKNOWN_SECTION",
        "UNKNOWN_TYPE",
    ]
    assert "COD-UGA: parties[1]: 'UGA' is not a participant of the trust store " in "\n".join(lines)
    assert any(
        line.startswith("COD-CAF-B: effective_from: overlaps agreement COD-CAF-A") for line in lines
    )


def test_check_names_the_field_of_a_malformed_document(
    tmp_path: Path, trust: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agreements = tmp_path / "agreements.yaml"
    agreements.write_text(EXAMPLE.read_text().replace("status: suspended", "status: paused"))
    assert main(["policy", "check", str(agreements), "--trust", str(trust)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("border-exchange: error: agreement set is invalid: ")
    assert "agreements[2] (COD-MONUSCO-2026).status: " in err
    assert "Traceback" not in err


def test_explain_prints_one_row_per_participant(
    trust: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["policy", "explain", "--agreements", str(EXAMPLE), "--trust", str(trust)]
    argv += ["--from", "COD", "--type", "WANTED_PERSON", "--at", "2026-06-01T00:00:00Z"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("agreement set 2026-11-01  digest ")
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert sorted(rows) == ["CAF", "COD", "SSD", "UN-MONUSCO"]
    assert rows["CAF"][:2] == ["deliver", "identity,documents,description,offence,remarks,contact"]
    assert rows["CAF"][-2:] == ["(agreement", "COD-CAF-2026)"]
    assert rows["COD"][:2] == ["deny", "ORIGIN"]
    assert rows["SSD"][:2] == ["deny", "TYPE_NOT_COVERED"]
    assert rows["UN-MONUSCO"][:2] == ["deny", "SUSPENDED"]


def test_explain_honours_handling_and_time(trust: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["policy", "explain", "--agreements", str(EXAMPLE), "--trust", str(trust)]
    argv += ["--from", "COD", "--type", "WANTED_PERSON", "--handling", "H3"]
    assert main([*argv, "--at", "2026-06-01T00:00:00Z"]) == 0
    assert "CAF         deny     HANDLING_ABOVE_LIMIT" in capsys.readouterr().out
    assert main([*argv, "--at", "2031-01-01T00:00:00+00:00"]) == 0
    assert "CAF         deny     EXPIRED" in capsys.readouterr().out


def test_explain_shows_a_cancel_to_earlier_recipients(
    trust: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["policy", "explain", "--agreements", str(EXAMPLE), "--trust", str(trust)]
    argv += ["--from", "COD", "--type", "VEHICLE_NOTICE", "--at", "2026-06-01T00:00:00Z"]
    assert main([*argv, "--operation", "CANCEL", "--history", "UN-MONUSCO"]) == 0
    out = capsys.readouterr().out
    assert "UN-MONUSCO  deliver  (no sections)  (earlier recipient)" in out
    assert "SSD         deny     NOT_PREVIOUS_RECIPIENT" in out


def test_explain_refuses_a_set_that_does_not_check(
    tmp_path: Path, trust: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agreements = tmp_path / "agreements.yaml"
    agreements.write_text(BROKEN)
    argv = ["policy", "explain", "--agreements", str(agreements), "--trust", str(trust)]
    assert main([*argv, "--from", "COD", "--type", "WANTED_PERSON"]) == 1
    assert "5 problem(s)" in capsys.readouterr().err


def test_explain_wants_a_time_zone(trust: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["policy", "explain", "--agreements", str(EXAMPLE), "--trust", str(trust)]
    argv += ["--from", "COD", "--type", "WANTED_PERSON", "--at", "2026-06-01T00:00:00"]
    assert main(argv) == 1
    assert "--at: give a time zone" in capsys.readouterr().err
