"""The JSON and chat viewer: ``{% load json_viewer %}``, then ``{% json_view value %}``.

Any JSON-safe value becomes nested ``<details>`` (large or deep containers start
closed, huge ones are counted, not all rendered); chat messages (LangChain dumps,
OpenAI dicts, lc constructors) become bubbles with their tool calls. Every piece
of HTML is built with ``format_html`` / ``format_html_join`` and every value
taken from data (keys, strings, message contents, ids) goes through ``as_text()``,
which escapes it even when something upstream marked it safe: data only ever
reaches the page as text.

``render(value, depth)`` and ``scalar(value)`` are for other tag modules that show
values inside their own markup (the state diff).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from orchestrator.templatetags.loopgate import plural, as_text, tokens

register = template.Library()

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


def join(parts: Iterable[Any]) -> SafeString:
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
        return f"{{{plural(n, 'key')}}}"
    if n and all(as_message(item) for item in value):
        return f"[{plural(n, 'message')}]"
    return f"[{plural(n, 'item')}]"


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


def scalar(value: Any) -> SafeString:
    if value is None:
        return format_html('<span class="jv-null">{}</span>', "null")
    if isinstance(value, bool):
        return format_html('<span class="jv-bool">{}</span>', "true" if value else "false")
    if isinstance(value, (int, float, Decimal)):
        return format_html('<span class="jv-num">{}</span>', as_text(value))
    if isinstance(value, str):
        return _string(value)
    return _string(str(value))


def render(value: Any, depth: int) -> SafeString:
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
    return scalar(value)


def _entry(key: SafeString, value: Any, depth: int) -> SafeString:
    """One row of an object or list: a scalar inline, a container as its own <details>."""
    if isinstance(value, tuple | set | frozenset):
        value = list(value)
    if (isinstance(value, (Mapping, list)) and value and not as_message(value)) and depth < MAX_DEPTH:
        return format_html('<li class="jv-row">{}</li>', _container(value, depth, key=key))
    return format_html('<li class="jv-row">{}{}</li>', key, render(value, depth))


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
        body = format_html('<div class="chat">{}</div>', join(render(item, depth + 1) for item in value[:MAX_ITEMS]))
    else:
        rows = []
        for k, v in shown:
            label = (
                format_html('<span class="jv-key">{}</span>', as_text(k))
                if kind == "object"
                else format_html('<span class="jv-key jv-index">{}</span>', k)
            )
            rows.append(_entry(label, v, depth + 1))
        body = format_html('<ul class="jv-list">{}</ul>', join(rows))
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
                parts.append(format_html('<div class="bubble-block">{}</div>', render(block, depth + 1)))
        return join(parts)
    return render(content, depth + 1)


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
            ((as_text(k), render(v, depth + 1)) for k, v in args.items()),
        )
        return format_html('<table class="kv-table"><tbody>{}</tbody></table>', rows)
    if isinstance(args, Mapping) or args is None:
        return format_html('<p class="muted small">{}</p>', "no arguments")
    return format_html('<div class="tool-args">{}</div>', render(args, depth + 1))


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
        join(head),
        format_html('<div class="bubble-body">{}</div>', body) if body else "",
        calls,
    )


@register.simple_tag
def json_view(value: Any) -> SafeString:
    """``{% json_view value %}``: a server-rendered, always-escaped viewer for any JSON-safe value."""
    return format_html('<div class="json-view">{}</div>', render(value, 0))


@register.simple_tag
def json_view_cached(value: Any, key: str) -> SafeString:
    """``{% json_view_cached value key %}``: ``json_view`` for a value that never changes under ``key``
    (a finished execution's final state, keyed by its id and last change), rendered once per
    process's cache: a long run's state (hundreds of messages) took most of its page's time."""
    from django.core.cache import cache

    cache_key = f"json-view:{key}"
    html = cache.get(cache_key)
    if html is None:
        html = str(json_view(value))
        cache.set(cache_key, html, timeout=3600)
    return mark_safe(html)  # noqa: S308 - json_view's own output, escaped when it was rendered

