"""Alert files for ``publish``: JSON, YAML, JSON Lines; problems name their place and field."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from border_exchange.cli.publish import read_alert_files
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.samples import sample_alert_data


def test_json_yaml_and_json_lines_are_read_with_their_locations(tmp_path: Path) -> None:
    wanted = sample_alert_data(AlertType.WANTED_PERSON)
    vehicle = sample_alert_data(AlertType.VEHICLE_NOTICE)
    broken = sample_alert_data(AlertType.VEHICLE_NOTICE)
    broken["handling_code"] = "H9"
    del broken["sections"]["vehicle"]["plate"]
    del broken["sections"]["vehicle"]["vin"]
    (tmp_path / "one.json").write_text(json.dumps(wanted))
    (tmp_path / "many.yaml").write_text(yaml.safe_dump_all([vehicle, [wanted, broken]]))
    (tmp_path / "batch.jsonl").write_text(json.dumps(vehicle) + "\n\n" + json.dumps(broken) + "\n")
    items = read_alert_files(
        [tmp_path / "one.json", tmp_path / "many.yaml", tmp_path / "batch.jsonl"]
    )
    assert [item.location.removeprefix(str(tmp_path) + "/") for item in items] == [
        "one.json",
        "many.yaml#1",
        "many.yaml#2[0]",
        "many.yaml#2[1]",
        "batch.jsonl:1",
        "batch.jsonl:3",
    ]
    valid = [item for item in items if item.alert is not None]
    assert len(valid) == 4
    rejected = items[3]
    assert rejected.alert is None
    assert "handling_code: Input should be 'H0', 'H1', 'H2' or 'H3'" in rejected.problems
    assert "sections.vehicle: a plate or a VIN is required" in rejected.problems


def test_a_file_that_is_not_json_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (item,) = read_alert_files([tmp_path / "bad.json"])
    assert item.alert is None
    assert item.problems[0].startswith("(file): not valid JSON or YAML")
