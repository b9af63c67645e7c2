"""Facts every log line about a piece of work should carry: the request id, the execution,
its graph and step. Context variables, so each request, run and LangGraph task thread
(LangGraph copies the context into its threads) sees its own.

``ops.logs.JsonFormatter`` writes them into every JSON line (``LOG_FORMAT=json``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

_fields: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("loopgate_log_fields", default={})


def current() -> dict[str, Any]:
    return _fields.get()


def set_fields(**fields: Any) -> None:
    """Add facts for the rest of the current context (a run's graph, its step)."""
    _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)
