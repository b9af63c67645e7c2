"""Small filters of the trace pages: ``{% load trace_tags %}``. Data leaves as plain text (escaped by the template)."""

from __future__ import annotations

from typing import Any

from django import template

from orchestrator.templatetags.loopgate import duration, plain
from traces.outcome import outcome_of

register = template.Library()


@register.filter
def outcome(execution: Any) -> Any:
    """``{% with o=execution|outcome %}``: what it produced (traces/outcome.py), or None."""
    return outcome_of(getattr(execution, "state", None))


@register.filter
def ms(value: Any) -> str:
    """Milliseconds → "850 ms", "1.8 s" (the shared ``duration`` wording)."""
    if value is None or value == "":
        return "—"
    try:
        return duration(float(value) / 1000)
    except (TypeError, ValueError):
        return "—"


@register.filter
def nodes_label(nodes: Any) -> str:
    if isinstance(nodes, (list, tuple)):
        return plain(", ".join(str(n) for n in nodes) or "—")
    return plain(nodes or "—")


@register.filter
def bytes_short(value: Any) -> str:
    """1536 → "1.5 KB" (decimal units, one decimal under 10)."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}" if n < 10 else f"{n:.0f} {unit}"
        n /= 1000
    return "—"


@register.filter
def first_line(value: Any) -> str:
    text = str(value or "").strip().splitlines()
    return plain(text[0][:200] if text else "")


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None
