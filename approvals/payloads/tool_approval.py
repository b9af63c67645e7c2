"""LangChain's per-call tool approval: ``{"type": "tool_approval", "tool_call_id", "name",
"args", "description"}``, with the decisions it takes and the edited arguments' schema in the
interrupt's ``response_schema``; resumed with one decision as in ``hitl``."""

from __future__ import annotations

from typing import Any

from approvals.payloads.base import (
    ALL_DECISIONS, APPROVE, EDIT, REJECT, Action, Decision, PayloadFormat, as_args, description_of, schema_or_none,
)
from approvals.payloads.hitl import langchain_decision
from orchestrator.json_schema import resolve


class ToolApprovalFormat(PayloadFormat):
    name = "tool_approval"

    def recognises(self, value: Any) -> bool:
        return isinstance(value, dict) and value.get("type") == "tool_approval" and "name" in value

    def actions(self, value: Any, response_schema: Any = None) -> list[Action]:
        name = str(value["name"])
        return [Action(
            name=name,
            args=as_args(value.get("args", {})),
            description=description_of(value.get("description"), name),
            allowed_decisions=_allowed(response_schema),
            args_schema=_args_schema(response_schema),
        )]

    def resume_value(self, actions: list[Action], decisions: list[Decision], *, by: str = "",
                     comment: str = "") -> Any:
        return langchain_decision(actions[0], decisions[0])


def _args_schema(response_schema: Any) -> dict[str, Any] | None:
    """Dig the edited tool's argument schema out of a per-call ``response_schema``."""
    if not isinstance(response_schema, dict):
        return None
    stack = [response_schema]
    while stack:
        node = resolve(stack.pop(), response_schema)
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict) and "edited_action" in props:
                edited = resolve(props["edited_action"], response_schema)
                args = edited.get("properties", {}).get("args") if isinstance(edited, dict) else None
                args = resolve(args, response_schema)
                if isinstance(args, dict):
                    schema = dict(args)
                    if "$defs" in response_schema and "$defs" not in schema:
                        schema["$defs"] = response_schema["$defs"]  # nested refs still resolve
                    return schema_or_none(schema)
            stack.extend(v for k, v in node.items() if k != "$defs" and isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _allowed(response_schema: Any) -> list[str]:
    """The decisions the ``response_schema`` names (its ``type`` consts or enum), in Loopgate's order."""
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
