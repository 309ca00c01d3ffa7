"""The pydantic section models and the ``.avsc`` files agree field by field.

fastavro drops the keys of a dict that its schema lacks, so a field added to a model
only would be lost without a word; a field added to a schema only would never be set.
"""

from __future__ import annotations

import types
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from border_exchange.domain import alerts
from border_exchange.domain.catalog import AlertType
from border_exchange.domain.encoding import SECTION_SCHEMAS
from border_exchange.domain.schemas import registry

_SECTIONS_MODEL: dict[AlertType, type[BaseModel]] = {
    AlertType.WANTED_PERSON: alerts.WantedPersonSections,
    AlertType.VEHICLE_NOTICE: alerts.VehicleNoticeSections,
    AlertType.BORDER_INCIDENT: alerts.BorderIncidentSections,
}
_SCALARS: dict[type, tuple[Any, ...]] = {
    str: ("string",),
    int: ("int", "long"),
    float: ("double", "float"),
    bool: ("boolean",),
    bytes: ("bytes",),
    datetime: ({"type": "long", "logicalType": "timestamp-micros"},),  # before date, its base
    date: ({"type": "int", "logicalType": "date"},),
}


def section_pairs() -> list[tuple[str, type[BaseModel], str]]:
    """Every (section, model, schema name) the alert types carry, once per schema."""
    pairs: dict[str, tuple[str, type[BaseModel], str]] = {}
    for alert_type, sections_model in _SECTIONS_MODEL.items():
        for section, schema_name in SECTION_SCHEMAS[alert_type].items():
            annotation = sections_model.model_fields[section].annotation
            model = next(arg for arg in get_args(annotation) if arg is not type(None))
            pairs.setdefault(schema_name, (section, model, schema_name))
    return list(pairs.values())


def _bare(annotation: Any) -> Any:
    """``annotation`` without its ``Annotated`` constraints."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _optional(annotation: Any) -> Any | None:
    """The T of ``T | None``, else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        if type(None) in args and len(args) == 2:
            return next(arg for arg in args if arg is not type(None))
    return None


def _named(schema: Any) -> Any:
    """A ``{"type": {...}}`` wrapper reduced to the schema it wraps."""
    while isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
        schema = schema["type"]
    return schema


def _type_problems(annotation: Any, schema: Any, path: str) -> list[str]:
    annotation = _bare(annotation)
    schema = _named(schema)
    inner = _optional(annotation)
    if inner is not None:
        if not (isinstance(schema, list) and len(schema) == 2 and schema[0] == "null"):
            return [f"{path}: optional in the model, not a [null, T] union in the schema"]
        return _type_problems(inner, schema[1], path)
    if isinstance(schema, list):
        return [f"{path}: a union in the schema, not optional in the model"]
    if get_origin(annotation) is list:
        if not (isinstance(schema, dict) and schema.get("type") == "array"):
            return [f"{path}: a list in the model, not an array in the schema"]
        return _type_problems(get_args(annotation)[0], schema["items"], f"{path}[]")
    if get_origin(annotation) is Literal:
        annotation = type(get_args(annotation)[0])
    if annotation is AwareDatetime:
        annotation = datetime
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        if not (isinstance(schema, dict) and schema.get("type") == "enum"):
            return [f"{path}: an enum in the model, not in the schema"]
        symbols = [member.value for member in annotation]
        if schema["symbols"] != symbols:
            return [f"{path}: symbols {schema['symbols']} in the schema, {symbols} in the model"]
        return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not (isinstance(schema, dict) and schema.get("type") == "record"):
            return [f"{path}: a model in the model, not a record in the schema"]
        return record_problems(annotation, schema, path)
    for scalar, avro in _SCALARS.items():
        if isinstance(annotation, type) and issubclass(annotation, scalar):
            if schema in avro or (isinstance(schema, dict) and schema.get("type") in avro):
                if isinstance(schema, dict) and schema.get("logicalType") and schema not in avro:
                    return [f"{path}: {scalar.__name__} in the model, {schema} in the schema"]
                return []
            return [f"{path}: {scalar.__name__} in the model, {schema} in the schema"]
    return [f"{path}: no rule for the model's type {annotation!r}"]


def _default_problems(field: FieldInfo, entry: dict[str, Any], path: str) -> list[str]:
    """A model default must be the schema's; a required field may have one in the schema
    (for readers of records written before the field existed)."""
    if field.is_required():
        return []
    if "default" not in entry:
        return [f"{path}: has a default in the model, none in the schema"]
    default = field.get_default(call_default_factory=True)
    expected = default.value if isinstance(default, Enum) else default
    if entry["default"] != expected:
        return [f"{path}: default {entry['default']!r} in the schema, {expected!r} in the model"]
    return []


def record_problems(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[str]:
    """Where ``model`` and the Avro record ``schema`` disagree, each with its field path."""
    entries = {entry["name"]: entry for entry in schema["fields"]}
    names = model.model_fields.keys()
    problems = [f"{path}.{name}: in the model only" for name in names - entries]
    problems += [f"{path}.{name}: in the schema only" for name in entries.keys() - names]
    for name, field in model.model_fields.items():
        if name in entries:
            problems += _type_problems(field.annotation, entries[name], f"{path}.{name}")
            problems += _default_problems(field, entries[name], f"{path}.{name}")
    if not problems and list(model.model_fields) != list(entries):
        problems.append(f"{path}: fields in another order than in the schema")
    return problems


@pytest.mark.parametrize(
    ("section", "model", "schema_name"), section_pairs(), ids=[p[2] for p in section_pairs()]
)
def test_the_section_model_and_its_schema_agree_field_by_field(
    section: str, model: type[BaseModel], schema_name: str
) -> None:
    assert record_problems(model, dict(registry().schema(schema_name).raw), schema_name) == []


@pytest.mark.parametrize("alert_type", list(AlertType))
def test_every_section_of_the_model_has_its_schema_and_no_other(alert_type: AlertType) -> None:
    model = _SECTIONS_MODEL[alert_type]
    assert list(model.model_fields) == list(SECTION_SCHEMAS[alert_type])
    for schema_name in SECTION_SCHEMAS[alert_type].values():
        assert schema_name in registry().current


def _schema_of(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": "Probe", "fields": fields}


class _Probe(BaseModel):
    plate: str
    year: int | None = None
    marks: list[str] = []


def test_a_field_added_to_the_model_only_is_found() -> None:
    schema = _schema_of(
        [
            {"name": "plate", "type": "string"},
            {"name": "marks", "type": {"type": "array", "items": "string"}, "default": []},
        ]
    )
    assert record_problems(_Probe, schema, "Probe") == ["Probe.year: in the model only"]


def test_a_changed_type_optionality_or_default_is_found() -> None:
    schema = _schema_of(
        [
            {"name": "plate", "type": ["null", "string"], "default": None},
            {"name": "year", "type": ["null", "string"], "default": None},
            {"name": "marks", "type": {"type": "array", "items": "string"}},
        ]
    )
    assert record_problems(_Probe, schema, "Probe") == [
        "Probe.plate: a union in the schema, not optional in the model",
        "Probe.year: int in the model, string in the schema",
        "Probe.marks: has a default in the model, none in the schema",
    ]
