"""Turn graph state and node updates into JSON-safe data for storage and display.

LangGraph state may hold LangChain messages, Pydantic models, dataclasses,
tuples and sets; the trace keeps them as plain JSON so any page or API can show
them without unpickling anything. Messages keep a recognisable shape
(``type``, ``content``, ``tool_calls``) so the UI can draw them as messages.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Any

MAX_DEPTH = 50


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    if _depth > MAX_DEPTH:
        return "…"
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    nxt = _depth + 1
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, nxt) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, nxt) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v, nxt) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    message = _message_to_dict(value, nxt)
    if message is not None:
        return message
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, nxt)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return to_jsonable(model_dump(mode="json"), nxt)
        except Exception:  # noqa: BLE001 - a model that cannot dump itself is shown by repr
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), nxt)
    if hasattr(value, "_asdict"):
        return to_jsonable(value._asdict(), nxt)
    return repr(value)


def _message_to_dict(value: Any, depth: int) -> dict[str, Any] | None:
    try:
        from langchain_core.messages import BaseMessage
    except ImportError:  # pragma: no cover - langchain-core is a dependency
        return None
    if not isinstance(value, BaseMessage):
        return None
    out: dict[str, Any] = {"type": value.type, "content": to_jsonable(value.content, depth)}
    for attr in ("name", "id", "tool_call_id", "status"):
        attr_value = getattr(value, attr, None)
        if attr_value:
            out[attr] = to_jsonable(attr_value, depth)
    tool_calls = getattr(value, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = to_jsonable(tool_calls, depth)
    usage = getattr(value, "usage_metadata", None)
    if usage:
        out["usage_metadata"] = to_jsonable(usage, depth)
    return out
