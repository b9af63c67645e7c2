"""Interrupt payload formats, recognised from the value a graph passed to ``interrupt()``.

Pure functions, no database. Every format is shown the same way: a list of
actions ``{"name", "args", "description", "allowed_decisions", "args_schema"}``.
Decisions use Loopgate's vocabulary: approve, edit, reject, respond.

- LangChain ``HumanInTheLoopMiddleware`` (batched): ``{"action_requests": [...],
  "review_configs": [...]}``; resumed with ``{"decisions": [...]}``.
- LangChain per-call tool approval: ``{"type": "tool_approval", "tool_call_id",
  "name", "args", "description"}``; resumed with one decision.
- Agent Inbox ``HumanInterrupt``: ``[{"action_request": {"action", "args"},
  "config": {allow_accept, allow_edit, allow_respond, allow_ignore},
  "description"}]``; resumed with a list of ``HumanResponse``.
- Anything else (a plain value): approve, reject or respond with text.
"""

from __future__ import annotations

import datetime
from typing import Any, TypedDict

from django.utils import timezone
from django.utils.dateparse import parse_datetime

APPROVE, EDIT, REJECT, RESPOND = "approve", "edit", "reject", "respond"
ALL_DECISIONS = (APPROVE, EDIT, REJECT, RESPOND)

HITL, TOOL_APPROVAL, AGENT_INBOX, PLAIN, BREAKPOINT = "hitl", "tool_approval", "agent_inbox", "plain", "breakpoint"


class Action(TypedDict, total=False):
    name: str
    args: dict[str, Any]
    description: str
    allowed_decisions: list[str]
    args_schema: dict[str, Any] | None


def _is_hitl(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action_requests"), list) and "review_configs" in value


def _is_tool_approval(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "tool_approval" and "name" in value


def _is_agent_inbox_item(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action_request"), dict) and "config" in value


def _is_agent_inbox(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_agent_inbox_item(item) for item in value)


def _as_args(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"value": value}


def _tool_args_schema(response_schema: Any) -> dict[str, Any] | None:
    """Dig the edited tool's argument schema out of a per-call ``response_schema``."""
    if not isinstance(response_schema, dict):
        return None
    stack = [response_schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict) and "edited_action" in props:
                edited = props["edited_action"]
                args = edited.get("properties", {}).get("args") if isinstance(edited, dict) else None
                if isinstance(args, dict):
                    return args
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _tool_allowed(response_schema: Any) -> list[str]:
    found: list[str] = []
    stack = [response_schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            type_prop = node.get("properties", {}).get("type") if isinstance(node.get("properties"), dict) else None
            if isinstance(type_prop, dict):
                for key in ("const", "enum"):
                    got = type_prop.get(key)
                    for item in got if isinstance(got, list) else [got]:
                        if item in ALL_DECISIONS and item not in found:
                            found.append(item)
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)
    return [d for d in ALL_DECISIONS if d in found] or [APPROVE, EDIT, REJECT]


def parse(value: Any, response_schema: Any = None) -> tuple[str, list[Action]]:
    """Recognise the payload format and return ``(format, actions)``."""
    if _is_hitl(value):
        configs = [c for c in value.get("review_configs") or [] if isinstance(c, dict)]
        by_name = {c.get("action_name"): c for c in configs}
        actions: list[Action] = []
        for index, request in enumerate(value["action_requests"]):
            request = request if isinstance(request, dict) else {"name": str(request), "args": {}}
            config = by_name.get(request.get("name")) or (configs[index] if index < len(configs) else {})
            allowed = [d for d in ALL_DECISIONS if d in (config.get("allowed_decisions") or [])]
            actions.append(
                Action(
                    name=str(request.get("name", "action")),
                    args=_as_args(request.get("args", {})),
                    description=str(request.get("description", "") or ""),
                    allowed_decisions=allowed or [APPROVE, REJECT],
                    args_schema=config.get("args_schema") if isinstance(config.get("args_schema"), dict) else None,
                )
            )
        return HITL, actions
    if _is_tool_approval(value):
        return TOOL_APPROVAL, [
            Action(
                name=str(value["name"]),
                args=_as_args(value.get("args", {})),
                description=str(value.get("description", "") or ""),
                allowed_decisions=_tool_allowed(response_schema),
                args_schema=_tool_args_schema(response_schema),
            )
        ]
    if _is_agent_inbox(value) or _is_agent_inbox_item(value):
        items = value if isinstance(value, list) else [value]
        actions = []
        for item in items:
            config = item.get("config") or {}
            allowed = [
                decision
                for decision, flag in ((APPROVE, "allow_accept"), (EDIT, "allow_edit"), (REJECT, "allow_ignore"),
                                       (RESPOND, "allow_respond"))
                if config.get(flag)
            ]
            request = item["action_request"]
            actions.append(
                Action(
                    name=str(request.get("action", "action")),
                    args=_as_args(request.get("args", {})),
                    description=str(item.get("description", "") or ""),
                    allowed_decisions=[d for d in ALL_DECISIONS if d in allowed] or [APPROVE],
                    args_schema=None,
                )
            )
        return AGENT_INBOX, actions
    name = "review"
    description = ""
    if isinstance(value, str):
        description = value
    elif isinstance(value, dict):
        name = str(value.get("action") or value.get("name") or "review")
        description = str(value.get("description") or value.get("question") or value.get("message") or "")
    return PLAIN, [
        Action(name=name, args=_as_args(value) if not isinstance(value, str) else {}, description=description,
               allowed_decisions=[APPROVE, REJECT, RESPOND], args_schema=None)
    ]


def breakpoint_actions(nodes: list[str], when: str) -> list[Action]:
    return [
        Action(
            name=node,
            args={},
            description=f"The graph stopped at a breakpoint {when} the node “{node}”. Approve to continue; "
            "reject to cancel the execution.",
            allowed_decisions=[APPROVE, REJECT],
            args_schema=None,
        )
        for node in nodes
    ]


def deadline_from(value: Any) -> datetime.datetime | None:
    """A payload may carry its own deadline: ``deadline`` (ISO 8601) or ``timeout_seconds``."""
    if not isinstance(value, dict):
        return None
    raw = value.get("deadline")
    if isinstance(raw, str):
        parsed = parse_datetime(raw)
        if parsed is not None:
            return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, datetime.timezone.utc)
    seconds = value.get("timeout_seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
        return timezone.now() + datetime.timedelta(seconds=seconds)
    return None
