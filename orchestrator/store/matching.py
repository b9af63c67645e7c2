"""What the Store compares in Python, the same on Postgres and SQLite: no database here.

- namespaces: a tuple of labels, kept as text joined by ``.`` (LangGraph forbids
  the dot in a label, so the text is unambiguous) and matched against the
  prefix / suffix conditions of ``list_namespaces`` (``*`` matches any label);
- ``filter`` of a search: exact values (nested objects and lists compared
  whole, as JSON) and the operators ``$eq $ne $gt $gte $lt $lte``, with the
  meaning LangGraph's in-memory store gives them (numbers compare as numbers);
- ``cosine`` for semantic search.

Filters are evaluated here rather than as JSON lookups in SQL: the two
databases disagree on JSON comparisons (types, ``null``, nested objects) and
LangGraph's Postgres store compares ``$gt`` as text, so ``10 < 9`` there. Here
one meaning holds everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.store.base import InvalidNamespaceError, MatchCondition

SEPARATOR = "."
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


class InvalidStoreValue(ValueError):
    """An item's value, key, TTL or filter that the Store cannot keep or apply; nothing was written."""


def namespace_text(namespace: Sequence[str]) -> str:
    return SEPARATOR.join(namespace)


def namespace_labels(text: str) -> tuple[str, ...]:
    return tuple(text.split(SEPARATOR)) if text else ()


def in_prefix(namespace: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    return namespace[: len(prefix)] == prefix


def matches_condition(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        part = namespace[: len(path)]
    elif condition.match_type == "suffix":
        part = namespace[len(namespace) - len(path):]
    else:
        raise InvalidNamespaceError(f"Unknown namespace match type {condition.match_type!r}: use prefix or suffix.")
    return all(want == "*" or want == label for label, want in zip(part, path))


# -- filters ------------------------------------------------------------------------------------------


def check_filter(filter: Mapping[str, Any] | None) -> None:
    """Refuse a filter that names an unknown operator, or compares with ``$gt``... what is not a number."""
    if filter is None:
        return
    if not isinstance(filter, Mapping):
        raise InvalidStoreValue(f"A search filter is an object of field: value, not {type(filter).__name__}.")
    for field, wanted in filter.items():
        if not isinstance(field, str):
            raise InvalidStoreValue(f"Filter fields are strings; got {field!r}.")
        if isinstance(wanted, Mapping) and any(str(k).startswith("$") for k in wanted):
            for operator, operand in wanted.items():
                if operator not in OPERATORS:
                    raise InvalidStoreValue(
                        f"Unknown filter operator {operator!r} on {field!r}: use one of {', '.join(OPERATORS)}.")
                if operator in ("$gt", "$gte", "$lt", "$lte") and not _is_number(operand):
                    raise InvalidStoreValue(f"{operator} on {field!r} compares numbers; got {operand!r}.")


def matches_filter(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    if not filter:
        return True
    return all(_matches(value.get(field), wanted) for field, wanted in filter.items())


def _matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return all(_apply(actual, operator, operand) for operator, operand in wanted.items())
        return isinstance(actual, Mapping) and all(_matches(actual.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, (list, tuple)):
        return (isinstance(actual, (list, tuple)) and len(actual) == len(wanted)
                and all(_matches(a, w) for a, w in zip(actual, wanted)))
    return _same(actual, wanted)


def _same(actual: Any, wanted: Any) -> bool:
    # As JSON: true is not 1, and 1 is 1.0.
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual == wanted
    return bool(actual == wanted)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _apply(actual: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return _matches(actual, operand)
    if operator == "$ne":
        return not _matches(actual, operand)
    # A value that is not a number never compares (missing, text, true...).
    if not _is_number(actual):
        return False
    if operator == "$gt":
        return bool(actual > operand)
    if operator == "$gte":
        return bool(actual >= operand)
    if operator == "$lt":
        return bool(actual < operand)
    return bool(actual <= operand)


# -- values -------------------------------------------------------------------------------------------


def check_value(value: Any) -> dict[str, Any]:
    """The value as a plain JSON object, or ``InvalidStoreValue`` saying what is wrong with it."""
    if not isinstance(value, Mapping):
        raise InvalidStoreValue(f"An item's value is an object (a dict); got {type(value).__name__}.")
    if not all(isinstance(k, str) for k in value):
        raise InvalidStoreValue("An item's value has string keys only.")
    try:
        text = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidStoreValue(f"An item's value must be plain JSON: {exc}.") from None
    if "\\u0000" in text:
        # Postgres's jsonb refuses NUL in text; refuse it on every database alike.
        raise InvalidStoreValue("An item's value may not contain the NUL character (\\u0000).")
    return json.loads(text)


def check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidStoreValue(f"An item's key is a string; got {type(key).__name__}.")
    if not key or "\x00" in key:
        raise InvalidStoreValue("An item's key is a non-empty string without NUL characters.")
    return key


def check_ttl(ttl: Any) -> float | None:
    if ttl is None:
        return None
    if not _is_number(ttl) or ttl <= 0:
        raise InvalidStoreValue(f"A TTL is a positive number of minutes; got {ttl!r}.")
    return float(ttl)


# -- vectors ------------------------------------------------------------------------------------------


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
