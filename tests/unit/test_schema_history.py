"""Every schema version ever committed is kept, and records written with each still decode.

A version is its writer schema, the Parsing Canonical Form that its fingerprint names: a
``doc`` or a ``default`` changes no fingerprint. The git history is the record of what
was committed; ``schemas/avro/history/`` must hold every superseded one.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema
from fastavro.utils import generate_many
from nacl.signing import SigningKey

from border_exchange.domain import encoding
from border_exchange.domain.catalog import AlertType, WarningMarker
from border_exchange.domain.encoding import ENVELOPE_SCHEMA, decode_envelope, decode_record
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.schemas import (
    HISTORY_DIR,
    SINGLE_OBJECT_MAGIC,
    build_registry,
    default_schema_dir,
    registry,
    schema_fingerprint,
)
from border_exchange.domain.signing import seal, signature_holds, signing_input
from tests.clock import days
from tests.unit.test_schema_compatibility import committed_versions, git_top

SCHEMA_DIR = default_schema_dir()
CURRENT = sorted(SCHEMA_DIR.glob("*.avsc"))
HISTORY = sorted((SCHEMA_DIR / HISTORY_DIR).glob("*.avsc"))


@pytest.mark.parametrize("path", CURRENT, ids=[p.stem for p in CURRENT])
def test_every_committed_version_is_kept(path: Path) -> None:
    top = git_top()
    if top is None:
        pytest.skip("no git history here (an sdist or a tarball)")
    known = registry().by_fingerprint
    for label, old in committed_versions(path, top):
        fingerprint = schema_fingerprint(old)
        assert fingerprint in known, (
            f"{path.name} as committed in {label} (fingerprint {fingerprint.hex()}) is not "
            f"in {HISTORY_DIR}/: copy it there as {path.stem}.v<N>.avsc"
        )


def test_the_history_holds_superseded_versions_only() -> None:
    for path in HISTORY:
        schema = json.loads(path.read_text(encoding="utf-8"))
        name = f"{schema['namespace']}.{schema['name']}"
        assert path.name.startswith(f"{name}.v"), path.name
        assert schema_fingerprint(schema) != registry().schema(name).fingerprint, path.name


def _old_record(schema: dict[str, Any], seed: int) -> tuple[bytes, dict[str, Any]]:
    """A random record of ``schema`` in single-object encoding, and the record."""
    parsed = parse_schema(copy.deepcopy(schema), named_schemas={})
    random.seed(seed)
    record = next(iter(generate_many(parsed, 1)))
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MAGIC + schema_fingerprint(schema))
    schemaless_writer(buffer, parsed, record)
    buffer.seek(len(SINGLE_OBJECT_MAGIC) + 8)
    read = schemaless_reader(buffer, parsed, None)  # as its writer reads it back
    assert isinstance(read, dict)
    return buffer.getvalue(), read


@pytest.mark.parametrize("path", HISTORY, ids=[p.stem for p in HISTORY])
def test_records_written_with_an_old_version_decode_with_the_current_reader(path: Path) -> None:
    old = json.loads(path.read_text(encoding="utf-8"))
    name = f"{old['namespace']}.{old['name']}"
    current = registry().schema(name).raw
    kept = {f["name"] for f in old["fields"]} & {f["name"] for f in current["fields"]}
    added = {f["name"]: f["default"] for f in current["fields"] if f["name"] not in kept}
    for seed in range(20):
        data, written = _old_record(old, seed)
        decoded_name, record = decode_record(data)
        assert decoded_name == name
        assert list(record) == [f["name"] for f in current["fields"]]
        for field, default in added.items():
            assert record[field] == default, field
        for field in kept:
            if not isinstance(written[field], dict | list):  # nested records are resolved too
                assert record[field] == written[field], field


def test_an_audit_record_written_before_feed_offset_was_removed_decodes() -> None:
    old = json.loads((SCHEMA_DIR / HISTORY_DIR / "bx.AuditRecord.v1.avsc").read_text())
    parsed = parse_schema(old, named_schemas={})
    outcome = {"participant": "COD", "delivered": True, "sections": ["identity"],
               "reason": None, "agreement_id": "CAF-COD", "basis": "AGREEMENT",
               "feed_offset": 41}  # fmt: skip
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MAGIC + schema_fingerprint(old))
    record = {"chain": "bx.CAF.outbox/0", "seq": 3, "prev_hash": bytes(32), "kind": "DECISION",
              "recorded_at": 1_700_000_000_000_000, "outcomes": [outcome]}  # fmt: skip
    schemaless_writer(buffer, parsed, record)
    name, decoded = decode_record(buffer.getvalue())
    assert name == "bx.AuditRecord"
    assert decoded["outcomes"] == [
        {key: value for key, value in outcome.items() if key != "feed_offset"}
    ]


def _enum(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The enum ``name`` inside the envelope schema ``schema``."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum" and node.get("name") == name:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found[0]


OPEN_ENUMS = {"AlertType", "ActionOnHit", "WarningMarker", "Priority"}
CLOSED_ENUMS = {"Operation", "HandlingCode", "SourceReliability", "InformationReliability"}


def test_the_envelope_enums_that_may_grow_have_a_default_and_the_closed_scales_none() -> None:
    raw = registry().schema(ENVELOPE_SCHEMA).raw
    for name in OPEN_ENUMS:
        enum = _enum(dict(raw), name)
        assert enum.get("default") in enum["symbols"], name
    for name in CLOSED_ENUMS:
        assert "default" not in _enum(dict(raw), name), name


def test_a_new_warning_marker_reaches_an_older_reader_as_the_default_and_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer writer's symbol is read as the enum's default; the signature, which covers
    the symbol's name, then fails, so nothing acts on a marker it did not understand."""
    current = copy.deepcopy(dict(registry().schema(ENVELOPE_SCHEMA).raw))
    newer = copy.deepcopy(current)
    _enum(newer, "WarningMarker")["symbols"].append("CHILD_AT_RISK")
    for path in CURRENT:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / HISTORY_DIR).mkdir()
    (tmp_path / HISTORY_DIR / "bx.AlertEnvelope.v99.avsc").write_text(json.dumps(newer))
    assert build_registry(tmp_path).by_fingerprint[schema_fingerprint(newer)].name == (
        ENVELOPE_SCHEMA
    )
    key = SigningKey(bytes(range(32)))
    envelope = seal(
        sample_alert(AlertType.WANTED_PERSON),
        signing_key=key,
        key_id="CAF-2026-01",
        message_id="m-new-marker",
        issued_at=days(-1),
    )
    header = dataclasses.replace(
        envelope.header, warning_markers=(WarningMarker.VIOLENT, WarningMarker.ARMED)
    )
    # What the newer writer signs: its marker's name where the older reader will see ARMED.
    signed_input = signing_input(header, envelope.sections).replace(
        b"\x00\x00\x00\x05ARMED", b"\x00\x00\x00\x0dCHILD_AT_RISK"
    )
    signature = key.sign(signed_input).signature
    assert signature_holds(signature + signed_input, bytes(key.verify_key))
    written = {
        "header": {
            **encoding._header_record(header),
            "warning_markers": ["VIOLENT", "CHILD_AT_RISK"],
        },
        "sections": encoding.envelope_record(envelope)["sections"],
        "signature": signature,
    }
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MAGIC + schema_fingerprint(newer))
    schemaless_writer(buffer, parse_schema(newer, named_schemas={}), written)
    monkeypatch.setenv("BX_SCHEMA_DIR", str(tmp_path))
    registry.cache_clear()
    try:
        read = decode_envelope(buffer.getvalue())
    finally:
        monkeypatch.delenv("BX_SCHEMA_DIR")
        registry.cache_clear()
    assert read.header.warning_markers == (WarningMarker.VIOLENT, WarningMarker.ARMED)
    assert not signature_holds(
        read.signature + signing_input(read.header, read.sections), bytes(key.verify_key)
    )
