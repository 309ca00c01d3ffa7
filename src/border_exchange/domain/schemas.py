"""The Avro schema registry: every committed schema version, by name and by fingerprint.

Schemas live at the top of the repository in ``schemas/avro/`` (``<full name>.avsc``,
the current version of each record) and ``schemas/avro/history/`` (superseded versions,
kept so that records written with them still decode). The directory is found next to the
source tree (the package is installed in editable mode); ``BX_SCHEMA_DIR`` overrides it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from border_exchange.errors import SchemaError

SCHEMA_DIR_ENV: Final = "BX_SCHEMA_DIR"
SINGLE_OBJECT_MAGIC: Final = b"\xc3\x01"
HISTORY_DIR: Final = "history"


@dataclass(frozen=True)
class Schema:
    """One version of a named Avro schema."""

    name: str
    fingerprint: bytes  # CRC-64-AVRO of the Parsing Canonical Form, little-endian, 8 bytes
    raw: Mapping[str, Any]
    parsed: Any  # fastavro's parsed form, used by its reader and writer
    current: bool
    defaults: Mapping[str, Any] = field(default_factory=dict)  # top-level field defaults


@dataclass(frozen=True)
class Registry:
    """All known schema versions: current ones by name, every one by fingerprint."""

    current: Mapping[str, Schema]
    by_fingerprint: Mapping[bytes, Schema]

    def schema(self, name: str) -> Schema:
        """The current version of schema ``name``."""
        try:
            return self.current[name]
        except KeyError:
            raise SchemaError(f"unknown schema {name!r}") from None


def default_schema_dir() -> Path:
    """``schemas/avro`` of the repository, or ``$BX_SCHEMA_DIR`` when set."""
    override = os.environ.get(SCHEMA_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "schemas" / "avro"


def schema_fingerprint(raw: Mapping[str, Any]) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of ``raw``'s Parsing Canonical Form."""
    canonical = to_parsing_canonical_form(dict(raw))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def load_schema_file(path: Path, *, current: bool) -> Schema:
    """Read and parse one ``.avsc`` file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = parse_schema(raw, named_schemas={})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SchemaError(f"{path.name}: cannot load schema: {exc}") from exc
    if not isinstance(raw, dict) or "name" not in raw:
        raise SchemaError(f"{path.name}: a top-level named schema is required")
    namespace = raw.get("namespace")
    name = str(raw["name"])
    full_name = name if "." in name or not namespace else f"{namespace}.{name}"
    defaults = {
        entry["name"]: entry["default"]
        for entry in raw.get("fields", ())
        if isinstance(entry, dict) and "default" in entry
    }
    return Schema(
        full_name, schema_fingerprint(raw), raw, parsed, current, MappingProxyType(defaults)
    )


def build_registry(directory: Path) -> Registry:
    """Load every current schema of ``directory`` and every superseded one of its history."""
    if not directory.is_dir():
        raise SchemaError(f"schema directory {directory} does not exist (set {SCHEMA_DIR_ENV})")
    current: dict[str, Schema] = {}
    by_fingerprint: dict[bytes, Schema] = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = load_schema_file(path, current=True)
        if path.stem != schema.name:
            raise SchemaError(f"{path.name}: holds schema {schema.name}, expected {path.stem}")
        current[schema.name] = schema
        by_fingerprint[schema.fingerprint] = schema
    history = directory / HISTORY_DIR
    for path in sorted(history.glob("*.avsc")) if history.is_dir() else ():
        schema = load_schema_file(path, current=False)
        if schema.name not in current:
            raise SchemaError(f"{path.name}: superseded version of unknown schema {schema.name}")
        by_fingerprint.setdefault(schema.fingerprint, schema)
    return Registry(MappingProxyType(current), MappingProxyType(by_fingerprint))


@cache
def registry() -> Registry:
    """The process-wide registry, loaded once from ``default_schema_dir()``."""
    return build_registry(default_schema_dir())
