"""Loopgate's shared template tags and filters: ``{% load loopgate %}``.

Every piece of HTML here is built with ``format_html`` / ``format_html_join``,
and every value taken from data (keys, strings, message contents, ids, paths)
goes through ``as_text()``, which escapes it even if something upstream marked it
safe: data only ever reaches the page as text. The one literal marked safe is
the copy icon, a constant written below.

Filters: ``status_badge``, ``status_label``, ``reltime``, ``duration``,
``tokens``, ``cost``, ``diff_summary``.
Tags: ``status_badge``, ``short_id``, ``json_view``, ``diff_view``,
``token_meter``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

DASH = "—"


def as_text(value: Any) -> SafeString:
    """Data as escaped text, always (``escape`` ignores an upstream ``mark_safe``)."""
    return escape(str(value))


def plain(value: Any) -> str:
    """A plain ``str`` (never a SafeString), so the template escapes what a filter returns."""
    return str.__str__(str(value))

# --- status ------------------------------------------------------------------------

# Statuses of an Approval (and other records) that may share the badge; the
# execution statuses come from the model so the labels have one source.
_OTHER_LABELS = {
    "pending": "waiting for review",
    "approved": "approved",
    "rejected": "rejected",
    "edited": "edited",
    "responded": "responded",
    "expired": "expired",
    "escalated": "escalated",
    "superseded": "superseded",
    "forked": "continued in a fork",
}
_CLASS_SAFE = re.compile(r"[^a-z0-9_-]+")


def _status_labels() -> dict[str, str]:
    from orchestrator.models import Execution

    labels = dict(_OTHER_LABELS)
    labels.update({value: str(label) for value, label in Execution.Status.choices})
    return labels


def _status_value(value: Any) -> str:
    status = getattr(value, "status", value)
    return "" if status is None else str(status)


@register.filter
def status_label(value: Any) -> str:
    """The human label of a status (or of an object with ``.status``)."""
    status = _status_value(value)
    return plain(_status_labels().get(status, status.replace("_", " ")))


def _badge(value: Any) -> SafeString:
    status = _status_value(value)
    if not status:
        return format_html('<span class="badge badge-unknown">{}</span>', "unknown")
    css = _CLASS_SAFE.sub("-", status.lower())
    return format_html(
        '<span class="badge badge-{}" data-status="{}"><span class="badge-dot" aria-hidden="true"></span>{}</span>',
        css,
        as_text(status),
        as_text(status_label(status)),
    )


@register.simple_tag(name="status_badge")
def status_badge_tag(value: Any) -> SafeString:
    """``{% status_badge execution %}`` (or a status string)."""
    return _badge(value)


@register.filter(name="status_badge")
def status_badge_filter(value: Any) -> SafeString:
    """``{{ execution.status|status_badge }}``."""
    return _badge(value)


# --- time, duration, numbers ----------------------------------------------------------


def _to_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        value = parse_datetime(value.strip()) if value.strip() else None
    if isinstance(value, dt.datetime):
        result = value
    elif isinstance(value, dt.date):
        result = dt.datetime.combine(value, dt.time())
    else:
        return None
    if timezone.is_naive(result):
        result = timezone.make_aware(result, timezone.get_default_timezone())
    return result


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def relative_phrase(seconds: float, prefix: str = "", *, when: dt.datetime | None = None) -> str:
    """Words for an offset from now: positive is the past ("4 min ago"), negative the future ("in 5 min").

    With ``prefix`` the phrase reads as an ongoing span instead: "waiting 2 h".
    loopgate.js repeats these rules to refresh the text every 30 s.
    """
    future = seconds < 0
    s = abs(seconds)
    if s < 45:
        if prefix:
            return f"{prefix} <1 min"
        return "in a moment" if future else "just now"
    minutes = max(1, round(s / 60))
    if minutes < 60:
        amount = f"{minutes} min"
    else:
        hours = round(minutes / 60)
        if hours < 24:
            amount = f"{hours} h"
        else:
            days = round(hours / 24)
            if days < 30 or when is None:
                amount = _plural(days, "day")
            else:
                local = timezone.localtime(when)
                date = f"{local.day} {local:%b %Y}"
                return f"{prefix} since {date}" if prefix else date
    if prefix:
        return f"{prefix} {amount}"
    return f"in {amount}" if future else f"{amount} ago"


@register.filter
def reltime(value: Any, prefix: str = "") -> SafeString | str:
    """``{{ dt|reltime }}`` → ``<time datetime="…" title="exact local time">4 min ago</time>``.

    ``{{ approval.created_at|reltime:"waiting" }}`` reads "waiting 2 h".
    """
    when = _to_datetime(value)
    if when is None:
        return DASH
    seconds = (timezone.now() - when).total_seconds()
    local = timezone.localtime(when)
    prefix = plain(prefix or "")
    return format_html(
        '<time datetime="{}" title="{}" data-reltime="{}">{}</time>',
        when.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        as_text(prefix),
        as_text(relative_phrase(seconds, prefix, when=when)),
    )


def _to_float(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@register.filter
def duration(value: Any) -> str:
    """Seconds (or a timedelta) → "850 ms", "1.8 s", "42 s", "3 min 12 s", "2 h 5 min", "3 d 4 h"."""
    seconds = _to_float(value)
    if seconds is None:
        return DASH
    seconds = max(0.0, seconds)
    if seconds < 1:
        ms = round(seconds * 1000)
        if ms == 0 and seconds > 0:
            return "<1 ms"
        if ms < 1000:
            return f"{ms} ms"
    if seconds < 10 and round(seconds, 1) < 10:
        return f"{round(seconds, 1):.1f} s"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    total_minutes = round(seconds / 60)
    if total_minutes < 24 * 60:
        hours, minutes = divmod(total_minutes, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    total_hours = round(seconds / 3600)
    days, hours = divmod(total_hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def tokens(value: Any) -> str:
    """12345 → "12,345"."""
    if value is None or value == "" or isinstance(value, bool):
        return DASH
    try:
        return f"{int(Decimal(str(value))):,}"
    except (InvalidOperation, ValueError, TypeError):
        return plain(value)  # the template escapes it


_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


@register.filter
def cost(value: Any, currency: str = "") -> str:
    """0.0123 → "$0.0123", 12.5 → "$12.50"; ``{{ amount|cost:"EUR" }}`` → "€12.50", "CHF" → "12.50 CHF"."""
    if value is None or value == "" or isinstance(value, bool):
        return DASH
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return plain(value)
    if not amount.is_finite():
        return plain(value)
    code = (currency or getattr(settings, "LOOPGATE_CURRENCY", "USD") or "USD").upper()
    sign = "−" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        text = "0.00"
    elif amount < Decimal("0.0001"):
        text, sign = "0.0001", "<" + sign
    elif amount < 1:
        text = f"{amount.quantize(Decimal('0.0001'))}"
        while text.endswith("0") and len(text.split(".")[1]) > 2:
            text = text[:-1]
    else:
        text = f"{amount.quantize(Decimal('0.01')):,}"
    symbol = _CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code}"


# --- ids -----------------------------------------------------------------------------

# A constant, written here: the only literal marked safe in this module.
_COPY_ICON = mark_safe(
    '<svg class="icon" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">'
    '<rect x="5.5" y="5.5" width="8" height="8" rx="1.5" fill="none" stroke="currentColor" stroke-width="1.3"/>'
    '<path d="M3.5 10.5h-.5A1.5 1.5 0 0 1 1.5 9V3A1.5 1.5 0 0 1 3 1.5h6A1.5 1.5 0 0 1 10.5 3v.5" '
    'fill="none" stroke="currentColor" stroke-width="1.3"/></svg>'
)


@register.simple_tag
def short_id(value: Any, href: str = "", length: int = 8) -> SafeString | str:
    """``{% short_id obj.id %}``: the first 8 characters in monospace and a copy button for the full id.

    ``{% short_id e.id href=url %}`` makes the short id a link.
    """
    if value is None or value == "":
        return DASH
    full = str(value)
    short = as_text(full[: int(length)])
    full = as_text(full)
    if href:
        text = format_html('<a class="id-text mono" href="{}" title="{}">{}</a>', href, full, short)
    else:
        text = format_html('<code class="id-text mono" title="{}">{}</code>', full, short)
    return format_html(
        '<span class="short-id">{}<button type="button" class="copy-btn" data-copy="{}" '
        'title="Copy the full id" aria-label="Copy id {}">{}</button></span>',
        text,
        full,
        short,
        _COPY_ICON,
    )


# --- token meter ----------------------------------------------------------------------


@register.simple_tag
def token_meter(used: Any, budget: Any = None, show_text: bool = True) -> SafeString:
    """``{% token_meter e.tokens_used e.token_budget %}``: a bar against the budget (amber above 80 %, red at 100 %)."""
    used_n = _to_float(used) or 0.0
    budget_n = _to_float(budget)
    used_text = tokens(int(used_n))
    if not budget_n or budget_n <= 0:
        return format_html('<span class="meter-wrap"><span class="meter-text">{} tokens</span></span>', used_text)
    ratio = used_n / budget_n
    level = "over" if ratio >= 1 else "warn" if ratio > 0.8 else "ok"
    percent = min(100.0, max(0.0, ratio * 100))
    text = format_html('<span class="meter-text">{} / {}</span>', used_text, tokens(int(budget_n)))
    return format_html(
        '<span class="meter-wrap"><span class="meter meter-{}" role="meter" aria-label="Tokens used of budget" '
        'aria-valuemin="0" aria-valuemax="{}" aria-valuenow="{}" title="{} of {} tokens ({}%)">'
        '<span class="meter-fill" style="width: {}%"></span></span>{}</span>',
        level,
        int(budget_n),
        int(min(used_n, budget_n)),
        used_text,
        tokens(int(budget_n)),
        round(ratio * 100),
        f"{percent:.1f}",
        text if show_text else "",
    )


# --- JSON viewer ------------------------------------------------------------------------

MAX_DEPTH = 12
OPEN_DEPTH = 2  # containers at depth 0 and 1 start open, deeper ones closed
OPEN_MAX_ITEMS = 20  # containers with more items start closed
MAX_ITEMS = 500  # rendered per container; the rest is counted, not shown
MAX_STRING = 300

_MESSAGE_TYPES = {
    "human": "human",
    "user": "human",
    "ai": "ai",
    "assistant": "ai",
    "tool": "tool",
    "function": "tool",
    "system": "system",
    "developer": "system",
}
_MESSAGE_LABELS = {"human": "Human", "ai": "AI", "tool": "Tool", "system": "System"}
_LC_CLASS_TYPES = {
    "HumanMessage": "human",
    "AIMessage": "ai",
    "ToolMessage": "tool",
    "SystemMessage": "system",
    "HumanMessageChunk": "human",
    "AIMessageChunk": "ai",
    "ToolMessageChunk": "tool",
    "SystemMessageChunk": "system",
}


def _join(parts: Iterable[Any]) -> SafeString:
    """Concatenate pieces, escaping every one that is not already safe HTML."""
    return format_html_join("", "{}", ((part,) for part in parts))


def as_message(value: Any) -> tuple[str, Mapping[str, Any]] | None:
    """(kind, fields) when ``value`` looks like a chat message (LangChain dump, OpenAI dict, or lc constructor)."""
    if not isinstance(value, Mapping):
        return None
    if value.get("lc") == 1 and value.get("type") == "constructor" and isinstance(value.get("kwargs"), Mapping):
        ids = value.get("id") or []
        kind = _LC_CLASS_TYPES.get(str(ids[-1])) if isinstance(ids, list) and ids else None
        return (kind, value["kwargs"]) if kind else None
    if "content" not in value:
        return None
    if isinstance(value.get("type"), str) and value["type"] in {"human", "ai", "tool", "system"}:
        return _MESSAGE_TYPES[value["type"]], value
    if isinstance(value.get("role"), str) and value["role"] in _MESSAGE_TYPES:
        return _MESSAGE_TYPES[value["role"]], value
    return None


def _count_label(value: Mapping | list) -> str:
    n = len(value)
    if isinstance(value, Mapping):
        return f"{{{_plural(n, 'key')}}}"
    if n and all(as_message(item) for item in value):
        return f"[{_plural(n, 'message')}]"
    return f"[{_plural(n, 'item')}]"


def _string(value: str) -> SafeString:
    if len(value) <= MAX_STRING:
        return format_html('<span class="jv-str">{}</span>', as_text(value))
    return format_html(
        '<span class="jv-str jv-truncated">{}…</span>'
        '<details class="jv-more"><summary>show all ({} characters)</summary>'
        '<div class="jv-full jv-str">{}</div></details>',
        as_text(value[:MAX_STRING]),
        tokens(len(value)),
        as_text(value),
    )


def _scalar(value: Any) -> SafeString:
    if value is None:
        return format_html('<span class="jv-null">{}</span>', "null")
    if isinstance(value, bool):
        return format_html('<span class="jv-bool">{}</span>', "true" if value else "false")
    if isinstance(value, (int, float, Decimal)):
        return format_html('<span class="jv-num">{}</span>', as_text(value))
    if isinstance(value, str):
        return _string(value)
    return _string(str(value))


def _render(value: Any, depth: int) -> SafeString:
    if depth >= MAX_DEPTH:
        return format_html('<span class="jv-ellipsis" title="{}">…</span>', "Nested too deep to show here")
    if isinstance(value, tuple | set | frozenset):
        value = list(value)
    message = as_message(value)
    if message:
        return _message(*message, depth=depth)
    if isinstance(value, Mapping):
        if not value:
            return format_html('<span class="jv-empty">{}</span>', "{}")
        return _container(value, depth)
    if isinstance(value, list):
        if not value:
            return format_html('<span class="jv-empty">{}</span>', "[]")
        return _container(value, depth)
    return _scalar(value)


def _entry(key: SafeString, value: Any, depth: int) -> SafeString:
    """One row of an object or list: a scalar inline, a container as its own <details>."""
    if isinstance(value, tuple | set | frozenset):
        value = list(value)
    if (isinstance(value, (Mapping, list)) and value and not as_message(value)) and depth < MAX_DEPTH:
        return format_html('<li class="jv-row">{}</li>', _container(value, depth, key=key))
    return format_html('<li class="jv-row">{}{}</li>', key, _render(value, depth))


def _container(value: Mapping | list, depth: int, key: SafeString | None = None) -> SafeString:
    is_open = depth < OPEN_DEPTH and len(value) <= OPEN_MAX_ITEMS
    kind = "object" if isinstance(value, Mapping) else "array"
    summary = format_html(
        '{}<span class="jv-count">{}</span>',
        key if key is not None else "",
        _count_label(value),
    )
    items = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
    shown, hidden = items[:MAX_ITEMS], len(items) - MAX_ITEMS
    if isinstance(value, list) and all(as_message(item) for item in value):
        body = format_html('<div class="chat">{}</div>', _join(_render(item, depth + 1) for item in value[:MAX_ITEMS]))
    else:
        rows = []
        for k, v in shown:
            label = (
                format_html('<span class="jv-key">{}</span>', as_text(k))
                if kind == "object"
                else format_html('<span class="jv-key jv-index">{}</span>', k)
            )
            rows.append(_entry(label, v, depth + 1))
        body = format_html('<ul class="jv-list">{}</ul>', _join(rows))
    more = format_html('<p class="jv-hidden muted">… {} more not shown</p>', tokens(hidden)) if hidden > 0 else ""
    return format_html(
        '<details class="jv-node jv-{}"{}><summary>{}</summary>{}{}</details>',
        kind,
        format_html(" {}", "open") if is_open else "",
        summary,
        body,
        more,
    )


def _text_blocks(content: Any, depth: int) -> SafeString:
    """A message's content: a string, or a list of content blocks (text shown as text, the rest as JSON)."""
    if isinstance(content, str):
        return _string(content) if content else format_html('<span class="muted">{}</span>', "(no text)")
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(format_html('<div class="bubble-text">{}</div>', _string(block)))
            elif isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(format_html('<div class="bubble-text">{}</div>', _string(block["text"])))
            else:
                parts.append(format_html('<div class="bubble-block">{}</div>', _render(block, depth + 1)))
        return _join(parts)
    return _render(content, depth + 1)


def _tool_calls(fields: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """(name, args, id) for LangChain ``tool_calls`` and OpenAI ``tool_calls`` / ``function_call``."""
    calls: list[tuple[str, Any, str]] = []
    raw = fields.get("tool_calls")
    if not raw and isinstance(fields.get("additional_kwargs"), Mapping):
        raw = fields["additional_kwargs"].get("tool_calls")
    for call in raw if isinstance(raw, list) else []:
        if not isinstance(call, Mapping):
            continue
        if isinstance(call.get("function"), Mapping):  # OpenAI shape, arguments as a JSON string
            args: Any = call["function"].get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    pass
            calls.append((str(call["function"].get("name", "")), args, str(call.get("id") or "")))
        else:
            calls.append((str(call.get("name", "")), call.get("args"), str(call.get("id") or "")))
    return calls


def _args_table(args: Any, depth: int) -> SafeString:
    if isinstance(args, Mapping) and args:
        rows = format_html_join(
            "",
            '<tr><th scope="row" class="mono">{}</th><td>{}</td></tr>',
            ((as_text(k), _render(v, depth + 1)) for k, v in args.items()),
        )
        return format_html('<table class="kv-table"><tbody>{}</tbody></table>', rows)
    if isinstance(args, Mapping) or args is None:
        return format_html('<p class="muted small">{}</p>', "no arguments")
    return format_html('<div class="tool-args">{}</div>', _render(args, depth + 1))


def _message(kind: str, fields: Mapping[str, Any], depth: int) -> SafeString:
    head = [format_html('<span class="bubble-role">{}</span>', _MESSAGE_LABELS[kind])]
    name = fields.get("name")
    if isinstance(name, str) and name:
        head.append(format_html('<span class="bubble-name mono">{}</span>', as_text(name)))
    if kind == "tool" and fields.get("tool_call_id"):
        call_id = as_text(str(fields["tool_call_id"])[:12])
        head.append(format_html('<span class="bubble-meta mono" title="tool call id">{}</span>', call_id))
    if fields.get("status") == "error":
        head.append(format_html('<span class="badge badge-failed">{}</span>', "error"))
    usage = fields.get("usage_metadata")
    if isinstance(usage, Mapping) and ("input_tokens" in usage or "output_tokens" in usage):
        head.append(
            format_html(
                '<span class="bubble-meta">{} in · {} out tokens</span>',
                tokens(usage.get("input_tokens", 0)),
                tokens(usage.get("output_tokens", 0)),
            )
        )
    content = fields.get("content")
    body = _text_blocks(content, depth) if content not in (None, "", []) or kind != "ai" else ""
    calls = format_html_join(
        "",
        '<div class="tool-call"><div class="tool-call-head"><span class="tool-call-label">calls</span> '
        '<strong class="mono">{}</strong> <span class="bubble-meta mono">{}</span></div>{}</div>',
        (
            (as_text(name or "(unnamed tool)"), as_text(call_id[:12]), _args_table(args, depth))
            for name, args, call_id in _tool_calls(fields)
        ),
    )
    return format_html(
        '<div class="bubble bubble-{}" role="group" aria-label="{} message">'
        '<div class="bubble-head">{}</div>{}{}</div>',
        kind,
        _MESSAGE_LABELS[kind],
        _join(head),
        format_html('<div class="bubble-body">{}</div>', body) if body else "",
        calls,
    )


@register.simple_tag
def json_view(value: Any) -> SafeString:
    """``{% json_view value %}``: a server-rendered, always-escaped viewer for any JSON-safe value."""
    return format_html('<div class="json-view">{}</div>', _render(value, 0))


# --- diffs ---------------------------------------------------------------------------------

_DIFF_OPS = {"add": ("added", "+"), "remove": ("removed", "−"), "change": ("changed", "~")}


def _diff_value(value: Any) -> SafeString:
    """Small values inline, containers through the viewer (starting closed if large)."""
    if isinstance(value, (Mapping, list, tuple)) and value:
        return format_html('<div class="json-view json-inline">{}</div>', _render(value, 1))
    if isinstance(value, (Mapping, list, tuple)):
        return format_html('<span class="jv-empty">{}</span>', "{}" if isinstance(value, Mapping) else "[]")
    return format_html('<span class="diff-val">{}</span>', _scalar(value))


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
    return format_html('<ul class="diff">{}</ul>', _join(rows))


@register.filter
def diff_summary(diff: Any) -> str:
    """"+2 added, 1 changed, −1 removed" for a diff list; "no changes" when empty."""
    entries = [e for e in (diff if isinstance(diff, (list, tuple)) else []) if isinstance(e, Mapping)]
    counts = {op: sum(1 for e in entries if e.get("op") == op) for op in _DIFF_OPS}
    parts = []
    if counts["add"]:
        parts.append(f"+{counts['add']} added")
    if counts["change"]:
        parts.append(f"{counts['change']} changed")
    if counts["remove"]:
        parts.append(f"−{counts['remove']} removed")
    return ", ".join(parts) if parts else "no changes"
