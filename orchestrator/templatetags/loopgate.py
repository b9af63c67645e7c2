"""Loopgate's shared formatting tags and filters: ``{% load loopgate %}``.

Every piece of HTML here is built with ``format_html``,
and every value taken from data (ids, statuses, prefixes) goes through
``as_text()``, which escapes it even if something upstream marked it safe: data
only ever reaches the page as text. The one literal marked safe is the copy
icon, a constant written below. The JSON/chat viewer is ``{% load json_viewer %}``,
state diffs are ``{% load state_diff %}`` (traces).

Filters: ``status_badge``, ``status_label``, ``reltime``, ``duration``,
``tokens``, ``cost``.
Tags: ``status_badge``, ``short_id``, ``token_meter``, ``page_panels``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import escape, format_html
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


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def relative_phrase(seconds: float, prefix: str = "", *, when: dt.datetime | None = None) -> str:
    """Words for an offset from now: positive is the past ("4 min ago"), negative the future ("in 5 min").

    With ``prefix`` the phrase reads as an ongoing span instead: "waiting 2 h".

    The rule, which static/js/loopgate.js applies word for word when it refreshes the text every
    30 s (tests/browser/test_reltime.py holds the two to it): under 45 s is "just now"; otherwise
    whole units, always rounded down (never Python's round-half-to-even, never JavaScript's
    round-half-up: 150 s is "2 min" in both) — minutes (at least 1) under 60, hours under 24,
    then days; from 30 days on, the date (which the server alone writes).
    """
    future = seconds < 0
    s = abs(seconds)
    if s < 45:
        if prefix:
            return f"{prefix} <1 min"
        return "in a moment" if future else "just now"
    minutes = max(1, math.floor(s / 60))
    if minutes < 60:
        amount = f"{minutes} min"
    else:
        hours = math.floor(minutes / 60)
        if hours < 24:
            amount = f"{hours} h"
        else:
            days = math.floor(hours / 24)
            if days < 30 or when is None:
                amount = plural(days, "day")
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


# --- docstrings ----------------------------------------------------------------------------------------

_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_LITERAL = re.compile(r"``(.+?)``|`([^`]+)`")


def _inline(text: str) -> str:
    """Escaped text with ``literals`` as <code> (the escaping happens first, so nothing else becomes HTML)."""
    out, last = [], 0
    for match in _LITERAL.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(format_html("<code>{}</code>", match.group(1) or match.group(2)))
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


@register.filter
def docstring(text: Any) -> SafeString:
    """A graph's docstring as people read it: paragraphs, lists, ``literals`` in code, the rest as text.
    Lines of a paragraph join (docstrings wrap at 79 columns); a list item's indented lines join the item."""
    blocks: list[str] = []
    for chunk in re.split(r"\n\s*\n", str(text or "").strip()):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        if _LIST_ITEM.match(lines[0]):
            items: list[str] = []
            for line in lines:
                if _LIST_ITEM.match(line) or not items:
                    items.append(_LIST_ITEM.sub("", line).strip())
                else:
                    items[-1] += " " + line.strip()
            tag = "ol" if re.match(r"^\s*\d", lines[0]) else "ul"
            blocks.append(f"<{tag}>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + f"</{tag}>")
        else:
            blocks.append("<p>" + _inline(" ".join(line.strip() for line in lines)) + "</p>")
    return mark_safe("".join(blocks))  # noqa: S308 - every piece was escaped by _inline


@register.simple_tag(takes_context=True)
def page_panels(context: template.Context, page: str, **panel_context: Any) -> SafeString:
    """The panels feature apps registered for ``page`` (``orchestrator.hooks``), in order.

    Each panel renders its own templates with autoescape on: what it returns is
    trusted markup, as an ``{% include %}`` would be.
    """
    from orchestrator import hooks

    request = context.get("request")
    parts = [panel(request, **panel_context) for panel in hooks.page_panels(page)]
    return mark_safe("".join(part for part in parts if part))  # noqa: S308 - the panels' own rendered templates
