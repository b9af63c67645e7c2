"""Agent Inbox's ``HumanInterrupt``: ``[{"action_request": {"action", "args"}, "config":
{allow_accept, allow_edit, allow_respond, allow_ignore}, "description"}]`` (or one such item),
resumed with a list of ``HumanResponse``, one per action: ``{"type": "accept", "args": None}``,
``{"type": "edit", "args": {"action", "args"}}``, ``{"type": "response", "args": "text"}``,
``{"type": "ignore", "args": None}`` (Approve, Edit, Respond, Reject)."""

from __future__ import annotations

from typing import Any

from approvals.payloads.base import (
    ALL_DECISIONS, APPROVE, EDIT, REJECT, RESPOND, Action, Decision, PayloadFormat, as_args,
)

# Agent Inbox's config flags, each the decision it allows.
_FLAGS = ((APPROVE, "allow_accept"), (EDIT, "allow_edit"), (REJECT, "allow_ignore"), (RESPOND, "allow_respond"))


def _is_item(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action_request"), dict) and "config" in value


class AgentInboxFormat(PayloadFormat):
    name = "agent_inbox"

    def recognises(self, value: Any) -> bool:
        if isinstance(value, list):
            return bool(value) and all(_is_item(item) for item in value)
        return _is_item(value)

    def actions(self, value: Any, response_schema: Any = None) -> list[Action]:
        actions: list[Action] = []
        for item in value if isinstance(value, list) else [value]:
            config = item.get("config") or {}
            allowed = [decision for decision, flag in _FLAGS if config.get(flag)]
            request = item["action_request"]
            actions.append(Action(
                name=str(request.get("action", "action")),
                args=as_args(request.get("args", {})),
                description=str(item.get("description", "") or ""),
                allowed_decisions=[d for d in ALL_DECISIONS if d in allowed] or [APPROVE],
                args_schema=None,
            ))
        return actions

    def resume_value(self, actions: list[Action], decisions: list[Decision], *, by: str = "",
                     comment: str = "") -> Any:
        return [_human_response(a, d) for a, d in zip(actions, decisions)]


def _human_response(action: Action, decision: Decision) -> dict[str, Any]:
    kind = decision["type"]
    if kind == EDIT:
        return {"type": "edit", "args": {"action": action["name"], "args": decision["args"]}}
    if kind == RESPOND:
        return {"type": "response", "args": decision["message"]}
    if kind == REJECT:
        return {"type": "ignore", "args": None}
    return {"type": "accept", "args": None}
