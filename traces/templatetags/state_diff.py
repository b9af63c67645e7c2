"""State diffs as the trace pages show them: ``{% load state_diff %}``.

``{% diff_view diff %}`` lists the entries of a diff (``traces/diff.py``) with their
values through the JSON viewer; ``{{ diff|diff_summary }}`` counts them. Paths
and values are data: they reach the page as escaped text only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orchestrator.templatetags.json_viewer import join, json_view, render, scalar
from orchestrator.templatetags.loopgate import as_text
from traces.diff import summarize

register = template.Library()

_DIFF_OPS = {"add": ("added", "+"), "remove": ("removed", "−"), "change": ("changed", "~")}


def _diff_value(value: Any) -> SafeString:
    """Small values inline, containers through the viewer (starting closed if large)."""
    if isinstance(value, (Mapping, list, tuple)) and value:
        return format_html('<div class="json-view json-inline">{}</div>', render(value, 1))
    if isinstance(value, (Mapping, list, tuple)):
        return format_html('<span class="jv-empty">{}</span>', "{}" if isinstance(value, Mapping) else "[]")
    return format_html('<span class="diff-val">{}</span>', scalar(value))


@register.simple_tag
def diff_view(diff: Any) -> SafeString:
    """``{% diff_view diff %}`` for ``[{"op": "add"|"remove"|"change", "path", "before", "after"}, ...]``."""
    entries = list(diff) if isinstance(diff, (list, tuple)) else []
    if not entries:
        return format_html('<p class="diff-empty muted">{}</p>', "No changes.")
    rows = []
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("op") not in _DIFF_OPS:
            rows.append(format_html('<li class="diff-row diff-other">{}</li>', json_view(entry)))
            continue
        op = entry["op"]
        word, sign = _DIFF_OPS[op]
        path = as_text(entry.get("path") or "(root)")
        if op == "add":
            values = format_html('<div class="diff-after">{}</div>', _diff_value(entry.get("after")))
        elif op == "remove":
            values = format_html('<div class="diff-before">{}</div>', _diff_value(entry.get("before")))
        else:
            values = format_html(
                '<div class="diff-before">{}</div><span class="diff-arrow" aria-hidden="true">→</span>'
                '<span class="sr-only">changed to</span><div class="diff-after">{}</div>',
                _diff_value(entry.get("before")),
                _diff_value(entry.get("after")),
            )
        rows.append(
            format_html(
                '<li class="diff-row diff-{}"><span class="diff-sign" aria-hidden="true">{}</span>'
                '<span class="sr-only">{} </span><code class="diff-path">{}</code>'
                '<div class="diff-values">{}</div></li>',
                op,
                sign,
                word,
                path,
                values,
            )
        )
    return format_html('<ul class="diff">{}</ul>', join(rows))


@register.filter
def diff_summary(diff: Any) -> str:
    """``{{ step.diff|diff_summary }}``: "+2 added, 1 changed, −1 removed" (``traces.diff.summarize``)."""
    return summarize(diff)
