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


_PRIMITIVES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)


def compatibility_problems(old: Any, new: Any, path: str = "") -> list[str]:
    """Why ``new`` is not fully compatible with ``old`` (each reads the other's data).

    Empty when compatible: fields may be added with a default and removed only when
    they had one; types may not change; enum symbols may be added only when the
    enum has a default, and never removed.
    """
    problems: list[str] = []
    _compare(old, new, path or _type_name(new), problems)
    return problems


def _type_name(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("name") or schema.get("type"))
    if isinstance(schema, list):
        return "union"
    return str(schema)


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        kind = schema["type"]
        if isinstance(kind, str) and kind in _PRIMITIVES:
            logical = schema.get("logicalType")
            return f"{kind}/{logical}" if logical else kind
        return str(kind) if isinstance(kind, str) else _kind(kind)
    return str(schema)


def _compare(old: Any, new: Any, path: str, problems: list[str]) -> None:
    old_kind, new_kind = _kind(old), _kind(new)
    if old_kind != new_kind:
        problems.append(f"{path}: type changed from {old_kind} to {new_kind}")
        return
    if old_kind == "record":
        old_fields = {f["name"]: f for f in old["fields"]}
        new_fields = {f["name"]: f for f in new["fields"]}
        for name, field in old_fields.items():
            if name not in new_fields and "default" not in field:
                problems.append(f"{path}.{name}: removed, and it had no default")
        for name, field in new_fields.items():
            if name not in old_fields and "default" not in field:
                problems.append(f"{path}.{name}: added without a default")
            elif name in old_fields:
                _compare(old_fields[name]["type"], field["type"], f"{path}.{name}", problems)
    elif old_kind == "enum":
        removed = [s for s in old["symbols"] if s not in new["symbols"]]
        added = [s for s in new["symbols"] if s not in old["symbols"]]
        if removed:
            problems.append(f"{path}: enum symbols removed: {', '.join(removed)}")
        if added and "default" not in old:
            problems.append(f"{path}: enum symbols added to an enum without default")
    elif old_kind == "array":
        _compare(old["items"], new["items"], f"{path}[]", problems)
    elif old_kind == "map":
        _compare(old["values"], new["values"], f"{path}{{}}", problems)
    elif old_kind == "union":
        if len(old) != len(new):
            problems.append(f"{path}: union branches changed")
            return
        for index, (old_branch, new_branch) in enumerate(zip(old, new, strict=True)):
            _compare(old_branch, new_branch, f"{path}<{index}>", problems)
    elif old_kind == "fixed" and old["size"] != new["size"]:
        problems.append(f"{path}: fixed size changed from {old['size']} to {new['size']}")
