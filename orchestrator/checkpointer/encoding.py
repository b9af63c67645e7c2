"""JSON for the checkpoint and metadata columns: plain JSON where it is exact, the serde's bytes where not.

Pure functions, no database. JSON columns hold plain JSON; a value JSON cannot
hold exactly (bytes, a NUL in a string, which Postgres refuses, NaN, a
datetime...) is kept as the serde's bytes under a ``{"__serde__": [type,
base64]}`` marker, so metadata round-trips too.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from langgraph.checkpoint.serde.base import SerializerProtocol

# Strings up to this length stay inline in the checkpoint's JSON; longer ones
# become blobs, stored once per version instead of copied into every checkpoint.
INLINE_STR_MAX = 256
SERDE_MARKER = "__serde__"

T = TypeVar("T")


def is_json_str(value: str) -> bool:
    """Whether Postgres' jsonb can hold the string: it refuses NUL and lone surrogates."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_json_float(value: float) -> bool:
    """Whether the float survives JSON in both backends unchanged.

    NaN and infinities are not JSON; jsonb prints ``1e+16`` as an integer and
    drops the sign of ``-0.0``.
    """
    if not math.isfinite(value) or "e+" in repr(value):
        return False
    return not (value == 0.0 and math.copysign(1.0, value) < 0)


def is_inline(value: Any) -> bool:
    """A channel value small and plain enough to live in the checkpoint row.

    Exact types only: a ``str`` enum or a named tuple would come back from JSON
    as a plain ``str`` or list, so it goes through the serde as a blob.
    """
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return True
    if kind is float:
        return is_json_float(value)
    if kind is str:
        return len(value) <= INLINE_STR_MAX and is_json_str(value)
    return False


def to_json(serde: SerializerProtocol, value: Any) -> Any:
    """Plain JSON for what JSON holds exactly; the serde's bytes under a marker for the rest.

    Tuples become lists, as in every JSON-based saver (and in the serde itself).
    """
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is float and is_json_float(value):
        return value
    if kind is str and is_json_str(value):
        return value
    if kind is list or kind is tuple:
        return [to_json(serde, item) for item in value]
    # A dict that itself has the marker key is encoded whole, so decoding is unambiguous.
    if kind is dict and SERDE_MARKER not in value and all(type(k) is str and is_json_str(k) for k in value):
        return {k: to_json(serde, v) for k, v in value.items()}
    type_, data = serde.dumps_typed(value)
    return {SERDE_MARKER: [type_, base64.b64encode(data).decode("ascii")]}


def from_json(serde: SerializerProtocol, value: Any) -> Any:
    """Undo ``to_json``."""
    kind = type(value)
    if kind is list:
        return [from_json(serde, item) for item in value]
    if kind is dict:
        if len(value) == 1 and SERDE_MARKER in value:
            type_, data = value[SERDE_MARKER]
            return serde.loads_typed((type_, base64.b64decode(data)))
        return {k: from_json(serde, v) for k, v in value.items()}
    return value


def contains(haystack: Any, needle: Any) -> bool:
    """Postgres' jsonb ``@>`` on Python values: what ``list(filter=...)`` means in LangGraph's saver."""
    if type(needle) is dict:
        return type(haystack) is dict and all(k in haystack and contains(haystack[k], v) for k, v in needle.items())
    if isinstance(needle, (list, tuple)):
        return isinstance(haystack, (list, tuple)) and all(any(contains(h, n) for h in haystack) for n in needle)
    if isinstance(needle, bool) or isinstance(haystack, bool):
        # JSON keeps true and 1 apart; Python's == does not.
        return type(haystack) is type(needle) and haystack == needle
    return bool(haystack == needle)


def metadata_matches(metadata: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    return not filter or contains(metadata, filter)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
