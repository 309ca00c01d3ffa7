"""The agreement document: structural errors name the field, checks find what structure cannot."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from border_exchange.domain.agreements import (
    AgreementSet,
    AgreementStatus,
    ProblemCode,
    check_agreement_set,
    parse_agreement_set,
)
from border_exchange.domain.catalog import SECTIONS, AlertType, HandlingCode
from border_exchange.errors import PolicyError

PARTICIPANTS = ("CAF", "COD", "SSD", "UN-MONUSCO")

# Fixed dates on purpose: these tests parse and check documents (windows, boundaries,
# digests of their exact bytes); no check here reads the run's clock.
ONE = """
version: "2026-11-01"
agreements:
  - id: COD-CAF-2026
    parties: [COD, CAF]
    status: active
    effective_from: 2026-01-01T00:00:00Z
    effective_until: 2027-01-01T00:00:00Z
    flows:
      - from: COD
        to: CAF
        types:
          WANTED_PERSON: {sections: [contact, identity], max_handling: H2}
      - from: CAF
        to: COD
        types:
          WANTED_PERSON: {sections: all, max_handling: H1}
"""


def _with(**changes: object) -> str:
    """ONE's agreement with some fields replaced, as YAML (JSON is YAML)."""
    agreement: dict[str, object] = {
        "id": "COD-CAF-2026",
        "parties": ["COD", "CAF"],
        "status": "active",
        "effective_from": "2026-01-01T00:00:00Z",
        "effective_until": "2027-01-01T00:00:00Z",
        "flows": [
            {
                "from": "COD",
                "to": "CAF",
                "types": {"WANTED_PERSON": {"sections": ["identity"], "max_handling": "H2"}},
            }
        ],
    }
    agreement.update(changes)
    return json.dumps({"version": "v", "agreements": [agreement]})


def _codes(aset: AgreementSet) -> list[ProblemCode]:
    return [problem.code for problem in check_agreement_set(aset, PARTICIPANTS)]


def test_a_valid_document_parses_into_canonical_values() -> None:
    aset = parse_agreement_set(ONE)
    assert aset.label == "2026-11-01"
    (agreement,) = aset.agreements
    assert agreement.parties == ("CAF", "COD")
    assert agreement.status is AgreementStatus.ACTIVE
    assert agreement.effective_from == datetime(2026, 1, 1, tzinfo=UTC)
    cod_to_caf = agreement.flow("COD", "CAF")
    assert cod_to_caf is not None
    terms = cod_to_caf.types["WANTED_PERSON"]
    assert terms.sections == ("identity", "contact")  # catalog order
    assert terms.max_handling is HandlingCode.H2
    caf_to_cod = agreement.flow("CAF", "COD")
    assert caf_to_cod is not None
    assert caf_to_cod.types["WANTED_PERSON"].sections == SECTIONS[AlertType.WANTED_PERSON]
    assert check_agreement_set(aset, PARTICIPANTS) == []


def test_the_digest_is_sha256_of_the_canonical_bytes_and_they_read_back() -> None:
    aset = parse_agreement_set(ONE)
    # The documented layout, built here from ONE: compact JSON with sorted keys, parties
    # sorted, flows sorted by direction, sections in canonical order ("all" spelled out).
    wanted = AlertType.WANTED_PERSON.value
    expected = {
        "version": "2026-11-01",
        "agreements": [
            {
                "id": "COD-CAF-2026",
                "parties": ["CAF", "COD"],
                "status": "active",
                "effective_from": "2026-01-01T00:00:00Z",
                "effective_until": "2027-01-01T00:00:00Z",
                "flows": [
                    {
                        "from": "CAF",
                        "to": "COD",
                        "types": {
                            wanted: {
                                "max_handling": "H1",
                                "sections": list(SECTIONS[AlertType.WANTED_PERSON]),
                            }
                        },
                    },
                    {
                        "from": "COD",
                        "to": "CAF",
                        "types": {
                            wanted: {"max_handling": "H2", "sections": ["identity", "contact"]}
                        },
                    },
                ],
            }
        ],
    }
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    assert aset.canonical_bytes() == canonical
    assert aset.digest == hashlib.sha256(canonical).hexdigest()
    again = parse_agreement_set(aset.canonical_bytes().decode())
    assert again == aset
    assert again.canonical_bytes() == aset.canonical_bytes()


def test_layout_order_and_spelled_out_sections_do_not_change_the_digest() -> None:
    relaid = """
agreements:
  - flows:
      - to: COD
        from: CAF
        types:
          WANTED_PERSON:
            max_handling: H1
            sections: [identity, documents, description, photo, offence, remarks, contact]
      - from: COD
        to: CAF
        types: {WANTED_PERSON: {sections: [identity, contact], max_handling: H2}}
    effective_until: 2027-01-01T01:00:00+01:00
    effective_from: 2026-01-01T00:00:00Z
    status: active
    parties: [CAF, COD]
    id: COD-CAF-2026
version: "2026-11-01"
"""
    assert parse_agreement_set(relaid).digest == parse_agreement_set(ONE).digest


def test_the_label_is_part_of_the_digest() -> None:
    assert (
        parse_agreement_set(ONE).digest
        != parse_agreement_set(ONE.replace('"2026-11-01"', '"2026-11-02"')).digest
    )


def test_an_unquoted_date_label_and_date_only_times_are_accepted() -> None:
    aset = parse_agreement_set(
        ONE.replace('"2026-11-01"', "2026-11-01").replace("2026-01-01T00:00:00Z", "2026-01-01")
    )
    assert aset.label == "2026-11-01"
    assert aset.agreements[0].effective_from == datetime(2026, 1, 1, tzinfo=UTC)


def test_an_open_ended_agreement_has_no_until() -> None:
    aset = parse_agreement_set(_with(effective_until=None))
    assert aset.agreements[0].effective_until is None


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            _with(status="paused"), r"agreements\[0\] \(COD-CAF-2026\)\.status: ", id="status"
        ),
        pytest.param(
            _with(effective_from="2026-01-01T00:00:00"),
            r"effective_from: .*timezone",
            id="time without zone",
        ),
        pytest.param(_with(parties=["COD"]), r"\.parties\[1\]: Field required", id="one party"),
        pytest.param(_with(colour="red"), r"\.colour: Extra inputs", id="unknown field"),
        pytest.param(
            _with(flows=[{"form": "COD", "to": "CAF", "types": {}}]),
            r"flows\[0\]\.form: Extra inputs",
            id="misspelt from",
        ),
        pytest.param(
            _with(
                flows=[
                    {
                        "from": "COD",
                        "to": "CAF",
                        "types": {"WANTED_PERSON": {"sections": [], "max_handling": "H1"}},
                    }
                ]
            ),
            r"types\.WANTED_PERSON\.sections",
            id="empty sections",
        ),
        pytest.param(
            _with(
                flows=[
                    {
                        "from": "COD",
                        "to": "CAF",
                        "types": {
                            "WANTED_PERSON": {"sections": ["photo", "photo"], "max_handling": "H1"}
                        },
                    }
                ]
            ),
            r"sections: .*must not repeat",
            id="repeated section",
        ),
        pytest.param(
            _with(
                flows=[
                    {
                        "from": "COD",
                        "to": "CAF",
                        "types": {"WANTED_PERSON": {"sections": "all", "max_handling": "H9"}},
                    }
                ]
            ),
            r"max_handling: ",
            id="handling code",
        ),
        pytest.param(_with(id="has space"), r"\.id: ", id="agreement id"),
        pytest.param("version: v\nagreements: {}\n", r"agreements: ", id="agreements not a list"),
        pytest.param("- just\n- a list\n", r"must be a mapping", id="not a mapping"),
        pytest.param("version: [unclosed\n", r"not valid YAML", id="yaml syntax"),
        pytest.param("agreements: []\n", r"version: Field required", id="no version"),
    ],
)
def test_structural_errors_name_the_field_path(document: str, expected: str) -> None:
    with pytest.raises(PolicyError, match=expected):
        parse_agreement_set(document)


def test_a_repeated_agreement_id_is_refused() -> None:
    one = json.loads(_with())["agreements"][0]
    with pytest.raises(PolicyError, match=r"COD-CAF-2026.*more than once"):
        parse_agreement_set(json.dumps({"version": "v", "agreements": [one, one]}))


@pytest.mark.parametrize(
    ("document", "code", "path"),
    [
        pytest.param(
            _with(parties=["COD", "UGA"], flows=[]), ProblemCode.UNKNOWN_PARTICIPANT, "parties[1]"
        ),
        pytest.param(_with(parties=["COD", "COD"], flows=[]), ProblemCode.SAME_PARTIES, "parties"),
        pytest.param(
            _with(effective_until="2026-01-01T00:00:00Z"),
            ProblemCode.DATES_CONTRADICT,
            "effective_until",
        ),
        pytest.param(
            _with(
                flows=[
                    {
                        "from": "COD",
                        "to": "SSD",
                        "types": {"WANTED_PERSON": {"sections": "all", "max_handling": "H1"}},
                    }
                ]
            ),
            ProblemCode.FLOW_NOT_BETWEEN_PARTIES,
            "flows[0]",
        ),
        pytest.param(
            _with(
                flows=[
                    {
                        "from": "COD",
                        "to": "CAF",
                        "types": {"WANTED_PERSON": {"sections": "all", "max_handling": "H1"}},
                    },
                    {
                        "from": "COD",
                        "to": "CAF",
                        "types": {"VEHICLE_NOTICE": {"sections": "all", "max_handling": "H1"}},
                    },
                ]
            ),
            ProblemCode.DUPLICATE_FLOW,
            "flows[1]",
        ),
        pytest.param(
            _with(
                flows=[
                    {
                        "from": "COD",
                        "to": "CAF",
                        "types": {"STOLEN_ART": {"sections": "all", "max_handling": "H1"}},
                    }
                ]
            ),
            ProblemCode.UNKNOWN_TYPE,
            "flows[0].types.STOLEN_ART",
        ),
        pytest.param(
            _with(
                flows=[
                    {
                        "from": "COD",
                        "to": "CAF",
                        "types": {
                            "VEHICLE_NOTICE": {
                                "sections": ["vehicle", "photo"],
                                "max_handling": "H1",
                            }
                        },
                    }
                ]
            ),
            ProblemCode.UNKNOWN_SECTION,
            "flows[0].types.VEHICLE_NOTICE.sections",
        ),
    ],
)
def test_check_reports_semantic_problems(document: str, code: ProblemCode, path: str) -> None:
    problems = check_agreement_set(parse_agreement_set(document), PARTICIPANTS)
    assert [(p.code, p.agreement_id, p.path) for p in problems] == [(code, "COD-CAF-2026", path)]
    assert str(problems[0]).startswith(f"COD-CAF-2026: {path}: ")
    assert str(problems[0]).endswith(f"[{code}]")


def _pair(first: dict[str, object], second: dict[str, object]) -> AgreementSet:
    base = json.loads(_with())["agreements"][0]
    return parse_agreement_set(
        json.dumps(
            {
                "version": "v",
                "agreements": [{**base, **first, "id": "A"}, {**base, **second, "id": "B"}],
            }
        )
    )


def test_overlapping_agreements_for_the_same_pair_are_reported() -> None:
    aset = _pair({}, {"parties": ["CAF", "COD"], "effective_from": "2026-12-31T23:59:59Z"})
    assert _codes(aset) == [ProblemCode.OVERLAP]
    assert check_agreement_set(aset, PARTICIPANTS)[0].agreement_id == "B"


def test_an_open_ended_agreement_overlaps_every_later_one() -> None:
    aset = _pair(
        {"effective_until": None},
        {"effective_from": "2030-01-01T00:00:00Z", "effective_until": None},
    )
    assert _codes(aset) == [ProblemCode.OVERLAP]


def test_successive_agreements_meeting_at_the_exclusive_end_do_not_overlap() -> None:
    aset = _pair(
        {},
        {"effective_from": "2027-01-01T00:00:00Z", "effective_until": "2028-01-01T00:00:00Z"},
    )
    assert _codes(aset) == []


def test_a_terminated_agreement_may_overlap_its_replacement() -> None:
    assert _codes(_pair({"status": "terminated"}, {})) == []
    assert _codes(_pair({"status": "suspended"}, {})) == [ProblemCode.OVERLAP]


def test_agreements_for_different_pairs_may_overlap() -> None:
    assert _codes(_pair({}, {"parties": ["COD", "SSD"], "flows": []})) == []
