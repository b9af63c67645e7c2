"""LangChain's ``HumanInTheLoopMiddleware`` (batched): ``{"action_requests": [...],
"review_configs": [...]}``, resumed with ``{"decisions": [d, ...]}``, one per action in
order, each LangChain's ``HITLResponse`` decision: ``{"type": "approve"}``,
``{"type": "edit", "edited_action": {"name", "args"}}``, ``{"type": "reject"[, "message"]}``
or ``{"type": "respond", "message"}``."""

from __future__ import annotations

from typing import Any

from approvals.payloads.base import (
    ALL_DECISIONS, APPROVE, EDIT, REJECT, RESPOND, Action, Decision, PayloadFormat, as_args, description_of,
    schema_or_none,
)


class HitlFormat(PayloadFormat):
    name = "hitl"

    def recognises(self, value: Any) -> bool:
        return isinstance(value, dict) and isinstance(value.get("action_requests"), list) and "review_configs" in value

    def actions(self, value: Any, response_schema: Any = None) -> list[Action]:
        configs = [c for c in value.get("review_configs") or [] if isinstance(c, dict)]
        by_name = {c.get("action_name"): c for c in configs}
        actions: list[Action] = []
        for index, request in enumerate(value["action_requests"]):
            request = request if isinstance(request, dict) else {"name": str(request), "args": {}}
            config = by_name.get(request.get("name")) or (configs[index] if index < len(configs) else {})
            allowed = [d for d in ALL_DECISIONS if d in (config.get("allowed_decisions") or [])]
            name = str(request.get("name", "action"))
            actions.append(Action(
                name=name,
                args=as_args(request.get("args", {})),
                description=description_of(request.get("description"), name),
                allowed_decisions=allowed or [APPROVE, REJECT],
                args_schema=schema_or_none(config.get("args_schema")),
            ))
        return actions

    def resume_value(self, actions: list[Action], decisions: list[Decision], *, by: str = "",
                     comment: str = "") -> Any:
        return {"decisions": [langchain_decision(a, d) for a, d in zip(actions, decisions)]}


def langchain_decision(action: Action, decision: Decision) -> dict[str, Any]:
    """One decision as LangChain's middleware reads it (batched and per-call alike)."""
    kind = decision["type"]
    if kind == EDIT:
        return {"type": "edit", "edited_action": {"name": action["name"], "args": decision["args"]}}
    if kind == RESPOND:
        return {"type": "respond", "message": decision["message"]}
    if kind == REJECT:
        return {"type": "reject", "message": decision["message"]} if decision.get("message") else {"type": "reject"}
    return {"type": "approve"}
