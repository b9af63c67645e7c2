"""Small template helpers of the approvals pages: ``{% load approvals_extras %}``.

Argument values are data from graphs: shown as escaped text (``format_html``),
never marked safe; nested values go through the shared JSON viewer.
"""

from __future__ import annotations

from typing import Any

from django import forms, template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from approvals.payloads import DECISION_LABELS
from orchestrator.templatetags.json_viewer import json_view

register = template.Library()

_VERBS = {"approve": "Approved", "edit": "Edited", "reject": "Rejected", "respond": "Responded"}


@register.filter
def arg_value(value: Any) -> SafeString:
    """One argument's value: text as text (line breaks kept), numbers and flags in monospace, the rest as JSON."""
    if isinstance(value, str):
        if not value:
            return format_html('<span class="muted">{}</span>', "(empty)")
        return format_html('<span class="arg-text">{}</span>', value)
    if value is None or isinstance(value, (bool, int, float)):
        text = "null" if value is None else ("true" if value is True else "false" if value is False else str(value))
        return format_html('<span class="arg-scalar mono">{}</span>', text)
    return json_view(value)


@register.filter
def field(form: forms.Form, name: str) -> forms.BoundField | None:
    """``{{ form|field:name }}``: a bound field by its (dynamic) name."""
    try:
        return form[name]
    except KeyError:
        return None


@register.filter
def decision_label(kind: str) -> str:
    return DECISION_LABELS.get(kind, str(kind).capitalize())


@register.filter
def decision_verb(kind: str) -> str:
    return _VERBS.get(kind, str(kind).capitalize())


@register.filter
def index(sequence: Any, i: int) -> Any:
    try:
        return sequence[i]
    except (IndexError, KeyError, TypeError):
        return None


@register.filter
def changed_args(decision: dict[str, Any], action: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, before, after) of the arguments an edit changed, added or removed."""
    before = action.get("args") or {} if isinstance(action, dict) else {}
    after = decision.get("args") or {} if isinstance(decision, dict) else {}
    from approvals.payloads import ordered

    keys = ordered(list(before) + [k for k in after if k not in before], action)  # type: ignore[arg-type]
    missing = object()
    out = []
    for key in keys:
        old, new = before.get(key, missing), after.get(key, missing)
        if old != new:
            out.append((key, None if old is missing else old, None if new is missing else new))
    return out


@register.filter
def edit_has_errors(card: Any, form: Any) -> bool:
    """Keep an edit panel open when one of its fields has an error."""
    return bool(form is not None and card is not None and form.edit_has_errors(card))


@register.filter
def ordered_args(action: dict[str, Any]) -> list[tuple[str, Any]]:
    """``{% for key, value in action|ordered_args %}``: the arguments in the order the graph gave them."""
    from approvals.payloads import ordered

    args = action.get("args") or {} if isinstance(action, dict) else {}
    return [(key, args[key]) for key in ordered(args, action)]  # type: ignore[arg-type]
