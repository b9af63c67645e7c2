"""A graph's input: its JSON schema, an example to start from, and the check of a given input."""

from __future__ import annotations

import copy
import json
from typing import Any

from orchestrator.json_schema import first_error, json_type_of, json_types, resolve, value_matches


def input_json_schema(compiled: Any) -> dict[str, Any]:
    """The JSON schema of the graph's input.

    LangGraph's own ``get_input_jsonschema`` asks pydantic, which refuses a
    plain ``typing.TypedDict`` on Python < 3.12 (the seed graph's state); then
    the schema is built, as LangGraph does for other state types, from the
    channels' update types, and failing that it lists the keys with any type.
    """
    try:
        return compiled.get_input_jsonschema()
    except Exception:
        builder = getattr(compiled, "builder", None)
        if builder is None:
            return {"type": "object"}
    return _schema_from_channels(builder, compiled.get_name("Input"))


def _schema_from_channels(builder: Any, title: str) -> dict[str, Any]:
    from langgraph.channels.base import BaseChannel
    from pydantic import create_model

    typ = builder.input_schema
    keys = [key for key in builder.schemas.get(typ, {}) if isinstance(builder.channels.get(key), BaseChannel)]
    required = set(getattr(typ, "__required_keys__", ()))
    try:
        model = create_model(  # type: ignore[call-overload]
            title,
            **{key: (builder.channels[key].UpdateType, ... if key in required else None) for key in keys},
        )
        return model.model_json_schema()
    except Exception:
        schema: dict[str, Any] = {"title": title, "type": "object", "properties": {key: {} for key in keys}}
        if required:
            schema["required"] = [key for key in keys if key in required]
        return schema


_EMPTY_VALUES: dict[str, Any] = {
    "string": "",
    "integer": 0,
    "number": 0,
    "boolean": False,
    "array": [],
    "object": {},
    "null": None,
}


def example_from_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The required keys with empty / zero values: a form the user only has to fill in."""
    properties = schema.get("properties") or {}
    example: dict[str, Any] = {}
    for key in schema.get("required") or []:
        prop = resolve(properties.get(key) or {}, schema)
        if not isinstance(prop, dict) or "$ref" in prop:
            prop = {}  # a reference that leads nowhere says nothing about the value
        if "default" in prop:
            example[key] = copy.deepcopy(prop["default"])
        elif "const" in prop:
            example[key] = prop["const"]
        elif prop.get("enum"):
            example[key] = prop["enum"][0]
        else:
            types = json_types(prop, schema) or []
            usable = [t for t in types if t != "null"] or types
            example[key] = copy.deepcopy(_EMPTY_VALUES.get(usable[0])) if usable else None
    return example


def input_errors(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, str]:
    """What is wrong with ``data`` as input of a graph with this input schema, by key; empty when fine.

    Deliberately permissive: missing keys are fine (LangGraph takes partial
    input), and a value whose schema names no plain JSON type is accepted.
    """
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    errors: dict[str, str] = {}
    allow_extra = bool(schema.get("additionalProperties"))
    for key, value in data.items():
        if key not in properties:
            if not allow_extra:
                known = ", ".join(sorted(properties)) or "no keys"
                errors[key] = f"Unknown input key {key!r}; this graph's input has: {known}."
            continue
        expected = json_types(properties[key], schema)
        if expected is not None and not value_matches(value, expected):
            wanted = " or ".join(expected)
            errors[key] = f"Expected {wanted}, got {json_type_of(value)}."
            continue
        problem = deep_problem(key, value, properties[key], schema)
        if problem:
            errors[key] = problem
    return errors


def deep_problem(key: str, value: Any, prop: dict[str, Any], root: dict[str, Any]) -> str | None:
    """The first thing the key's JSON schema rejects deep inside ``value`` (an enum
    or ``Literal`` value, a nested object's field, a list item), or None.

    Message channels are left alone: LangGraph coerces strings, tuples and dicts
    into messages, which their pydantic schema would wrongly refuse.
    """
    text = json.dumps(prop, default=str)
    if "Message" in text or "$ref" in text and "$defs" not in root:
        return None
    error = first_error(value, {**prop, "$defs": root.get("$defs", {})})
    if error is None:
        return None
    where = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
    return f"{where}: {error.message}"
