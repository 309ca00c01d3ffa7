"""``border-exchange policy check`` and ``policy explain``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from border_exchange.cli.main import main
from border_exchange.demo.sandbox import Sandbox, make_sandbox
from border_exchange.domain.agreements import parse_agreement_set

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agreements.yaml"
# The example's windows are fixed dates, and so are the --at times asked of them below: the
# tests are about those windows (``explain --at`` takes the time asked, not the clock).

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


PASSPHRASE = "officer passphrase"


@pytest.fixture
def box() -> Sandbox:
    """The example's participants with fresh keys; the example signed by both parties."""
    return make_sandbox(["CAF", "COD", "SSD", "UN-MONUSCO"], EXAMPLE.read_text())


@pytest.fixture
def written(box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mapping[str, Path]:
    monkeypatch.setenv("BX_KEY_PASSPHRASE", PASSPHRASE)
    paths = dict(box.write(tmp_path / "box", PASSPHRASE.encode()))
    paths["example"] = EXAMPLE
    return paths


@pytest.fixture
def trust(written: Mapping[str, Path]) -> Path:
    return written["trust"]


@pytest.fixture
def signed(written: Mapping[str, Path]) -> Path:
    return written["agreements"]


def _rows(out: str) -> dict[str, list[str]]:
    """The participant rows of ``policy explain`` (after the set and alert lines)."""
    rows = {}
    for line in out.splitlines()[2:]:
        if not line:
            break
        rows[line.split()[0]] = line.split()[1:]
    return rows


def test_check_accepts_the_example_set(trust: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(EXAMPLE), "--trust", str(trust)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 4 agreements, label 2026-11-01, digest ")
    # Unsigned: sound, but not in force; the check says whose signature is missing.
    assert (
        "COD-CAF-2026  digest {}  signed by nobody  NOT IN FORCE: no signature of CAF; "
        "no signature of COD".format(
            parse_agreement_set(EXAMPLE.read_text()).by_id("COD-CAF-2026").content_digest()[:16]
        )
        in out
    )


def test_check_reports_every_problem_and_fails(
    tmp_path: Path, trust: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agreements = tmp_path / "agreements.yaml"
    agreements.write_text(BROKEN)
    assert main(["policy", "check", str(agreements), "--trust", str(trust)]) == 1
    lines = capsys.readouterr().out.splitlines()
    end = lines.index(f"5 problem(s) in {agreements}")
    codes = sorted(line.rsplit("[", 1)[1].rstrip("]") for line in lines[:end])
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
    trust: Path, signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["policy", "explain", "--agreements", str(signed), "--trust", str(trust)]
    argv += ["--from", "COD", "--type", "WANTED_PERSON", "--at", "2026-06-01T00:00:00Z"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("agreement set 2026-11-01  digest ")
    rows = _rows(out)
    assert sorted(rows) == ["CAF", "COD", "SSD", "UN-MONUSCO"]
    assert rows["CAF"][:2] == ["deliver", "identity,documents,description,offence,remarks,contact"]
    assert rows["CAF"][-2:] == ["(agreement", "COD-CAF-2026)"]
    assert rows["COD"][:2] == ["deny", "ORIGIN"]
    assert rows["SSD"][:2] == ["deny", "TYPE_NOT_COVERED"]
    assert rows["UN-MONUSCO"][:2] == ["deny", "SUSPENDED"]


def test_explain_honours_handling_and_time(
    trust: Path, signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["policy", "explain", "--agreements", str(signed), "--trust", str(trust)]
    argv += ["--from", "COD", "--type", "WANTED_PERSON", "--handling", "H3"]
    assert main([*argv, "--at", "2026-06-01T00:00:00Z"]) == 0
    assert "CAF         deny     HANDLING_ABOVE_LIMIT" in capsys.readouterr().out
    assert main([*argv, "--at", "2031-01-01T00:00:00+00:00"]) == 0
    assert "CAF         deny     EXPIRED" in capsys.readouterr().out


def test_explain_shows_a_cancel_to_earlier_recipients(
    trust: Path, signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["policy", "explain", "--agreements", str(signed), "--trust", str(trust)]
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


def _sign(written: Mapping[str, Path], party: str, out: Path, *extra: str) -> int:
    key = next(path for name, path in written.items() if name == f"key:{party}")
    argv = ["policy", "sign", str(EXAMPLE), "--trust", str(written["trust"]), "--as", party]
    return main([*argv, "--key", str(key), "--out", str(out), *extra])


def test_each_party_signs_on_its_own_and_combine_puts_the_agreement_in_force(
    written: Mapping[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _sign(written, "CAF", tmp_path / "caf.yaml") == 0
    assert "signed COD-CAF-2026 with COD (active, digest " in capsys.readouterr().out
    assert _sign(written, "COD", tmp_path / "cod.yaml", "--agreement", "COD-CAF-2026") == 0
    out = tmp_path / "signed.yaml"
    trust = str(written["trust"])
    argv = ["policy", "combine", str(EXAMPLE), str(tmp_path / "caf.yaml")]
    assert main([*argv, "--trust", trust, "--out", str(out)]) == 0
    assert "COD-CAF-2026  digest" in capsys.readouterr().out
    explain = ["policy", "explain", "--agreements", str(out), "--trust", trust]
    explain += ["--from", "COD", "--type", "WANTED_PERSON", "--at", "2026-06-01T00:00:00Z"]
    assert main(explain) == 0
    text = capsys.readouterr().out
    assert _rows(text)["CAF"][:2] == ["deny", "NOT_SIGNED"]
    assert "no signature of COD" in text
    assert "signed by CAF  NOT IN FORCE: no signature of COD" in text

    argv = [
        "policy",
        "combine",
        str(EXAMPLE),
        str(tmp_path / "caf.yaml"),
        str(tmp_path / "cod.yaml"),
    ]
    assert main([*argv, "--trust", trust, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(explain) == 0
    text = capsys.readouterr().out
    assert _rows(text)["CAF"][0] == "deliver"
    assert "COD-CAF-2026  digest" in text
    assert "signed by CAF, COD  signed by both; active" in text


def test_a_suspension_by_one_party_takes_effect_and_one_resume_does_not_lift_it(
    written: Mapping[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = str(written["trust"])
    signed = str(written["agreements"])

    def statement(party: str, action: str, name: str) -> Path:
        out = tmp_path / name
        argv = ["policy", "statement", signed, "--trust", trust, "--as", party]
        argv += ["--key", str(written[f"key:{party}"]), "--agreement", "COD-CAF-2026"]
        assert main([*argv, "--action", action, "--out", str(out)]) == 0
        return out

    suspend = statement("CAF", "suspend", "suspend.yaml")
    out = tmp_path / "suspended.yaml"
    assert (
        main(["policy", "combine", signed, str(suspend), "--trust", trust, "--out", str(out)]) == 0
    )
    explain = ["policy", "explain", "--agreements", str(out), "--trust", trust]
    explain += ["--from", "COD", "--type", "WANTED_PERSON"]
    capsys.readouterr()
    assert main(explain) == 0
    text = capsys.readouterr().out
    assert _rows(text)["CAF"][:2] == ["deny", "SUSPENDED"]
    assert "suspended by CAF at " in text

    resume = statement("COD", "resume", "resume-cod.yaml")
    half = tmp_path / "half.yaml"
    argv = ["policy", "combine", str(out), str(resume), "--trust", trust, "--out", str(half)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*explain[:3], str(half), *explain[4:]]) == 0
    text = capsys.readouterr().out
    assert _rows(text)["CAF"][:2] == ["deny", "SUSPENDED"]
    assert "resumed by COD only, CAF has not" in text


def test_combine_names_agreement_party_and_reason_of_a_bad_signature_and_writes_nothing(
    box: Sandbox, written: Mapping[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _sign(written, "CAF", tmp_path / "caf.yaml") == 0
    text = (tmp_path / "caf.yaml").read_text()
    digest = parse_agreement_set(EXAMPLE.read_text()).by_id("COD-CAF-2026").content_digest()
    cases = {
        "malformed": text.replace("signature: ", "signature: AAAA", 1),
        "unknown key": text.replace(f"key_id: {box.key_ids['CAF']}", "key_id: CAF-1999-09"),
        "other digest": text.replace(digest, "ab" * 32),
    }
    expected = {
        "malformed": "[MALFORMED]",
        "unknown key": "[UNKNOWN_KEY]",
        "other digest": "[OTHER_DIGEST]",
    }
    trust = str(written["trust"])
    for name, broken in cases.items():
        path = tmp_path / "broken.yaml"
        path.write_text(broken)
        out = tmp_path / f"{name}.yaml"
        argv = ["policy", "combine", str(EXAMPLE), str(path), "--trust", trust, "--out", str(out)]
        assert main(argv) == 1, name
        captured = capsys.readouterr()
        assert "agreement COD-CAF-2026: CAF: signature of CAF " in captured.out, name
        assert expected[name] in captured.out, name
        assert "Traceback" not in captured.out + captured.err
        assert not out.exists()


def test_signing_with_a_key_that_is_not_the_partys_is_refused(
    box: Sandbox, written: Mapping[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["policy", "sign", str(EXAMPLE), "--trust", str(written["trust"]), "--as", "CAF"]
    argv += ["--key", str(written["key:COD"]), "--out", str(tmp_path / "x.yaml")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"is not the private half of key {box.key_ids['CAF']} of CAF" in err
    assert not (tmp_path / "x.yaml").exists()


def test_a_malformed_signature_file_is_named_not_a_traceback(
    written: Mapping[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sig.yaml"
    path.write_text("signatures:\n  - {agreement: COD-CAF-2026, party: CAF, key_id: k}\n")
    argv = ["policy", "combine", str(EXAMPLE), str(path), "--trust", str(written["trust"])]
    assert main([*argv, "--out", str(tmp_path / "out.yaml")]) == 1
    err = capsys.readouterr().err
    assert "(agreement COD-CAF-2026, party CAF): signed_at: Field required" in err
    assert "Traceback" not in err
