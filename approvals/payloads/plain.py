"""Any other value (a plain value): approve, reject or respond with text. A plain dict may
opt in to other decisions with ``"allowed_decisions"`` (Edit too) and give its editable
arguments a JSON schema with ``"args_schema"``.

Resumed with ``{"type": "approve", "by": username}``, ``{"type": "reject", "message": "…",
"by": …}``, ``{"type": "respond", "message": "…", "by": …}`` or ``{"type": "edit", "args":
{...}, "by": …}`` where allowed; a reviewer's comment is added as ``"comment"``. Unanswered:
``{"type": "timeout"}`` (graphs route on it)."""

from __future__ import annotations

from typing import Any

from approvals.payloads.base import (
    ALL_DECISIONS, APPROVE, EDIT, REJECT, RESPOND, Action, Decision, PayloadFormat, schema_or_none,
)

# Keys of a plain dict payload that say what it is rather than being its arguments.
_META_KEYS = ("action", "name", "description", "question", "message", "deadline", "timeout_seconds",
              "allowed_decisions", "args_schema")


class PlainFormat(PayloadFormat):
    name = "plain"

    def recognises(self, value: Any) -> bool:
        return True  # the fallback: tried last

    def actions(self, value: Any, response_schema: Any = None) -> list[Action]:
        name, description, args = "review", "", {}
        allowed, schema = [APPROVE, REJECT, RESPOND], None
        if isinstance(value, str):
            description = value
        elif isinstance(value, dict):
            name = str(value.get("action") or value.get("name") or "review")
            description = str(value.get("description") or value.get("question") or value.get("message") or "")
            args = {k: v for k, v in value.items() if k not in _META_KEYS}
            if not args and not description:
                args = dict(value)
            # A plain dict may name the decisions it takes (Edit too) and the schema
            # of its editable arguments: a graph opts in, Loopgate never guesses.
            named = value.get("allowed_decisions")
            if isinstance(named, list) and any(d in ALL_DECISIONS for d in named):
                allowed = [d for d in ALL_DECISIONS if d in named]
            if isinstance(value.get("args_schema"), dict):
                schema = schema_or_none(value["args_schema"])
        elif value is not None:
            args = {"value": value}
        return [Action(name=name, args=args, description=description, allowed_decisions=allowed, args_schema=schema)]

    def resume_value(self, actions: list[Action], decisions: list[Decision], *, by: str = "",
                     comment: str = "") -> Any:
        decision = decisions[0]
        value: dict[str, Any] = {"type": decision["type"]}
        if decision["type"] == EDIT:
            value["args"] = decision["args"]
        if decision["type"] in (REJECT, RESPOND):
            value["message"] = decision.get("message", "")
        if by:
            value["by"] = by
        if comment:
            value["comment"] = comment
        return value

    def timeout_value(self, actions: list[Action]) -> Any:
        return {"type": "timeout"}
