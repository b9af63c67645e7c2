"""State diffs: what changed between two JSON-safe states, down to nested values.

A diff is a list of entries ``{"op": "add" | "remove" | "change", "path": str,
"before": ..., "after": ...}`` with paths spelled like ``reports[1]`` or
``messages[3].content``. Lists that only grew (the common case with reducers
such as ``operator.add``) show as additions at their new indexes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict


class DiffEntry(TypedDict, total=False):
    op: str
    path: str
    before: Any
    after: Any


MAX_ENTRIES = 500


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = str(key)
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def state_diff(before: Any, after: Any) -> list[DiffEntry]:
    out: list[DiffEntry] = []
    _walk(before, after, "", out)
    return out[:MAX_ENTRIES]


def _walk(before: Any, after: Any, path: str, out: list[DiffEntry]) -> None:
    if len(out) >= MAX_ENTRIES or before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before:
            if key not in after:
                out.append({"op": "remove", "path": _join(path, key), "before": before[key]})
        for key in after:
            if key not in before:
                out.append({"op": "add", "path": _join(path, key), "after": after[key]})
            else:
                _walk(before[key], after[key], _join(path, key), out)
        return
    if isinstance(before, list) and isinstance(after, list) and path:
        common = min(len(before), len(after))
        for index in range(common):
            _walk(before[index], after[index], _join(path, index), out)
        for index in range(common, len(after)):
            out.append({"op": "add", "path": _join(path, index), "after": after[index]})
        for index in range(common, len(before)):
            out.append({"op": "remove", "path": _join(path, index), "before": before[index]})
        return
    out.append({"op": "change", "path": path or "(state)", "before": before, "after": after})


def summarize(diff: Any) -> str:
    """"+2 added, 1 changed, −1 removed" for a diff; "no changes" when empty (or not a diff)."""
    entries = [e for e in (diff if isinstance(diff, (list, tuple)) else []) if isinstance(e, Mapping)]
    counts = {op: sum(1 for e in entries if e.get("op") == op) for op in ("add", "change", "remove")}
    parts = []
    if counts["add"]:
        parts.append(f"+{counts['add']} added")
    if counts["change"]:
        parts.append(f"{counts['change']} changed")
    if counts["remove"]:
        parts.append(f"−{counts['remove']} removed")
    return ", ".join(parts) if parts else "no changes"
