"""Every schema stays fully transitively compatible with all its earlier committed versions."""

from __future__ import annotations

import copy
import io
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema
from fastavro.utils import generate_many

from border_exchange.domain.schemas import (
    HISTORY_DIR,
    compatibility_problems,
    default_schema_dir,
    registry,
    schema_fingerprint,
)

SCHEMA_DIR = default_schema_dir()
CURRENT = sorted(SCHEMA_DIR.glob("*.avsc"))


def history_copies(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The superseded copies of ``path`` kept in the schema history directory."""
    return [
        (old.name, json.loads(old.read_text(encoding="utf-8")))
        for old in sorted((SCHEMA_DIR / HISTORY_DIR).glob(f"{path.stem}.*.avsc"))
    ]


def git_top() -> Path | None:
    """The top of the git checkout holding the schemas, or None (an sdist, a tarball)."""
    git = shutil.which("git")
    if git is None:
        return None
    top = subprocess.run(
        [git, "rev-parse", "--show-toplevel"], cwd=SCHEMA_DIR, capture_output=True, text=True
    )
    return Path(top.stdout.strip()) if top.returncode == 0 else None


def committed_versions(path: Path, top: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every committed version of ``path`` in the git history under ``top``.

    A version is a writer schema (its fingerprint); of the texts committed for one, the
    newest is taken, as readers resolve that writer with it: a ``doc`` or a ``default``
    (an enum's too) changes no fingerprint, so an enum default added later counts for
    every record written with that version.
    """
    git = shutil.which("git") or "git"
    versions: list[tuple[str, dict[str, Any]]] = []
    seen: set[bytes] = set()
    relative = path.resolve().relative_to(top.resolve()).as_posix()
    commits = subprocess.run(
        [git, "log", "--format=%H", "--", relative],
        cwd=top,  # the path is relative to the top, and so is git's pathspec from there
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for commit in commits:
        shown = subprocess.run(
            [git, "show", f"{commit}:{relative}"], cwd=top, capture_output=True, text=True
        )
        if shown.returncode == 0:
            schema = json.loads(shown.stdout)
            if schema_fingerprint(schema) not in seen:  # git log lists the newest first
                seen.add(schema_fingerprint(schema))
                versions.append((commit[:12], schema))
    return versions


def round_trip(writer: dict[str, Any], reader: dict[str, Any], count: int = 20) -> None:
    """Data written with ``writer`` decodes with ``reader`` (raises otherwise)."""
    parsed_writer = parse_schema(copy.deepcopy(writer), named_schemas={})
    parsed_reader = parse_schema(copy.deepcopy(reader), named_schemas={})
    random.seed(7)
    for record in generate_many(parsed_writer, count):
        buffer = io.BytesIO()
        schemaless_writer(buffer, parsed_writer, record)
        buffer.seek(0)
        schemaless_reader(buffer, parsed_writer, parsed_reader)


def fully_compatible(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = compatibility_problems(old, new)
    if problems:
        return problems
    for direction, writer, reader in (("old->new", old, new), ("new->old", new, old)):
        try:
            round_trip(writer, reader)
        except Exception as exc:  # any failure of resolution is the finding
            problems.append(f"{direction}: {type(exc).__name__}: {exc}")
    return problems


@pytest.mark.parametrize("path", CURRENT, ids=[p.stem for p in CURRENT])
def test_schema_is_compatible_with_every_earlier_committed_version(path: Path) -> None:
    current = json.loads(path.read_text(encoding="utf-8"))
    for label, old in history_copies(path):
        assert fully_compatible(old, current) == [], f"{path.name} vs {label}"
    top = git_top()
    if top is None:
        pytest.skip(
            "no git history here (an sdist or a tarball): checked against the schema "
            "history directory only, not against every committed version"
        )
    versions = committed_versions(path, top)
    assert versions, f"git knows no committed version of {path.name}: is it committed?"
    for label, old in versions:
        assert fully_compatible(old, current) == [], f"{path.name} vs {label}"


def test_the_registry_knows_every_schema_file() -> None:
    assert {p.stem for p in CURRENT} == set(registry().current)


RECORD: dict[str, Any] = {
    "type": "record",
    "name": "Probe",
    "namespace": "bx",
    "fields": [
        {"name": "plate", "type": "string"},
        {"name": "year", "type": "int"},
        {"name": "reason", "type": {"type": "enum", "name": "Reason", "symbols": ["A", "B"]}},
    ],
}


def changed(change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(RECORD)
    change(schema)
    return schema


def test_an_added_optional_field_with_a_default_passes() -> None:
    new = changed(
        lambda s: s["fields"].append({"name": "vin", "type": ["null", "string"], "default": None})
    )
    assert fully_compatible(RECORD, new) == []


def test_a_removed_field_with_a_default_passes() -> None:
    with_default = changed(
        lambda s: s["fields"].append({"name": "vin", "type": ["null", "string"], "default": None})
    )
    assert fully_compatible(with_default, RECORD) == []


def test_a_removed_field_fails() -> None:
    new = changed(lambda s: s["fields"].pop(1))
    assert fully_compatible(RECORD, new) == ["Probe.year: removed, and it had no default"]


def test_a_retyped_field_fails() -> None:
    def retype(schema: dict[str, Any]) -> None:
        schema["fields"][1]["type"] = "string"

    assert fully_compatible(RECORD, changed(retype)) == [
        "Probe.year: type changed from int to string"
    ]


def test_an_added_field_without_default_fails() -> None:
    new = changed(lambda s: s["fields"].append({"name": "vin", "type": "string"}))
    assert fully_compatible(RECORD, new) == ["Probe.vin: added without a default"]


def test_an_enum_symbol_added_without_an_enum_default_fails() -> None:
    def add_symbol(schema: dict[str, Any]) -> None:
        schema["fields"][2]["type"]["symbols"].append("C")

    assert fully_compatible(RECORD, changed(add_symbol)) == [
        "Probe.reason: enum symbols added to an enum without default"
    ]
