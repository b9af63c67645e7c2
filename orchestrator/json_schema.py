"""JSON Schema, read in one place: following a ``$ref``, the plain JSON types a
schema allows, and checking a value against a schema.

Graph input schemas (the registry) and the argument schemas of interrupt
payloads (approvals) are both written by Pydantic or by hand, in Draft 2020-12
with local ``{"$ref": "#/$defs/Name"}`` references. References are followed
with ``referencing`` and values checked with ``jsonschema``, the libraries
``jsonschema`` itself is built on; nothing here touches the database.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaViolation
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

# A chain of references longer than this is a loop (A → B → A), not a schema.
MAX_REF_HOPS = 20


def resolve(node: Any, root: Any) -> Any:
    """``node`` with its ``$ref`` (and the target's, and so on) followed within ``root``.

    A reference that cannot be followed (another document, a missing ``$defs``
    entry, a loop) leaves the node as it is: callers then treat it as a schema
    that says nothing plain, never as an error.
    """
    if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)) or not isinstance(root, dict):
        return node
    resolver = Registry().with_resource("", DRAFT202012.create_resource(root)).resolver()
    for _ in range(MAX_REF_HOPS):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str):
            return node
        try:
            resolved = resolver.lookup(ref)
        except Unresolvable:
            return node
        node, resolver = resolved.contents, resolved.resolver
    return node


def is_valid_schema(schema: Any) -> bool:
    """Whether ``schema`` is a JSON Schema at all (an object that Draft 2020-12 accepts)."""
    if not isinstance(schema, dict):
        return False
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return False
    return True


# --- plain JSON types ---------------------------------------------------------------------------


def json_type_of(value: Any) -> str:
    """The JSON type of a Python value (``integer`` for ``3``, ``boolean`` for ``True``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def json_types(prop: dict[str, Any], root: dict[str, Any], _depth: int = 0) -> list[str] | None:
    """The JSON types a property allows, or None when the schema does not say plainly."""
    if _depth > 5:
        return None
    prop = resolve(prop, root)
    if not isinstance(prop, dict):
        return None
    kind = prop.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    for union in ("anyOf", "oneOf"):
        if isinstance(prop.get(union), list):
            found: list[str] = []
            for option in prop[union]:
                types = json_types(option, root, _depth + 1)
                if types is None:
                    return None
                found.extend(t for t in types if t not in found)
            return found
    if "const" in prop:
        return [json_type_of(prop["const"])]
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return sorted({json_type_of(value) for value in prop["enum"]})
    return None


def value_matches(value: Any, types: list[str]) -> bool:
    """Whether ``value`` is of one of ``types`` (an integer is a number too)."""
    actual = json_type_of(value)
    return actual in types or (actual == "integer" and "number" in types)


# --- checking values ----------------------------------------------------------------------------


def first_error(value: Any, schema: dict[str, Any]) -> SchemaViolation | None:
    """The first thing ``schema`` rejects in ``value`` (in path order), or None.

    None too when the schema itself is not valid or cannot be followed: a
    schema Loopgate did not write must not make a good value look bad.
    """
    try:
        try:
            validator = _validator(json.dumps(schema, sort_keys=True))
        except (TypeError, ValueError):  # not plain JSON: checked each time, as given
            Draft202012Validator.check_schema(schema)
            validator = Draft202012Validator(schema)
        if validator is None:
            return None
        errors = validator.iter_errors(value)
        return next(iter(sorted(errors, key=_path_order)), None)
    except (SchemaError, Unresolvable, RecursionError, TypeError):
        return None


@functools.lru_cache(maxsize=512)
def _validator(schema_text: str) -> Draft202012Validator | None:
    """A checked validator per schema (checking a schema took most of a start's time), or None if
    the schema is not valid. Keyed by the schema's JSON text: graphs' schemas are few and fixed."""
    schema = json.loads(schema_text)
    try:
        Draft202012Validator.check_schema(schema)
    except (SchemaError, Unresolvable, RecursionError, TypeError):
        return None
    return Draft202012Validator(schema)


def _path_order(error: SchemaViolation) -> list[tuple[int, int, str]]:
    # List indexes in number order (2 before 10), and never an int compared with a key.
    return [(0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in error.path]


def errors_by_path(value: Any, schema: dict[str, Any]) -> dict[str, list[str]]:
    """Every error of ``value`` against ``schema`` (formats checked too), as messages
    for people, keyed by the path of what is wrong (``"to"``, ``"items.0.qty"``;
    ``""`` for the value as a whole). Empty when valid."""
    errors: dict[str, list[str]] = {}
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    named: dict[tuple[str, ...], int] = {}  # ``required`` errors seen per object: the n-th names the n-th key
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        at = tuple(str(part) for part in error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [key for key in error.validator_value if key not in error.instance]  # type: ignore[union-attr]
            index = named[at] = named.get(at, -1) + 1
            key = str(missing[index]) if index < len(missing) else ""
            errors.setdefault(".".join((*at, key) if key else at), []).append("This field is required.")
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = sorted((error.schema or {}).get("properties") or {})  # type: ignore[union-attr]
            takes = f" It takes: {', '.join(allowed)}." if allowed else ""
            for key in error.instance:
                if key not in allowed and not _matches_pattern(key, error.schema):
                    errors.setdefault(".".join((*at, str(key))), []).append(f"Not an argument here.{takes}")
        else:
            errors.setdefault(".".join(at), []).append(_error_message(error))
    return errors


def _matches_pattern(key: str, schema: Any) -> bool:
    patterns = (schema or {}).get("patternProperties") or {} if isinstance(schema, dict) else {}
    return any(re.search(pattern, key) for pattern in patterns)


def _error_message(error: SchemaViolation) -> str:
    if error.validator == "required":
        return "This field is required."
    if error.validator == "type":
        wanted: Any = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"Must be {'an' if str(wanted)[:1] in 'aeiou' else 'a'} {wanted}."
    if error.validator == "enum":
        values = error.validator_value
        return "Must be one of: " + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "."  # type: ignore[union-attr]
    if error.validator == "format":
        return f"Not a valid {error.validator_value}."
    return str(error.message)
