"""A ``command.resume`` value, as a LangGraph client sends it, read as inbox decisions.

Pure functions. The value must say what a reviewer could say in the inbox, in
the shape the graph's interrupt format expects (README, "Approvals: what a graph
gets back"); anything else is refused, naming what is accepted, before anything
is stored. ``approvals.payloads.check_decisions`` then checks the decisions
exactly as it checks the inbox's.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from approvals import payloads

PLAIN_SHAPES = ('{"type": "approve"}, {"type": "reject", "message": "…"}, {"type": "respond", "message": "…"} '
                'or, where the interrupt allows it, {"type": "edit", "args": {…}}')


def _refuse(message: str) -> ValidationError:
    return ValidationError({"command.resume": message})


def _from_langchain(value: Any, action: payloads.Action) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse('Each decision is an object: {"type": "approve" | "edit" | "reject" | "respond", …}.')
    kind = value.get("type")
    if kind == "edit":
        edited = value.get("edited_action")
        if not isinstance(edited, dict):
            raise _refuse('An edit gives "edited_action": {"name", "args"}.')
        if edited.get("name", action.get("name")) != action.get("name"):
            raise _refuse(f"An edit may change the arguments of {action.get('name')}, not the tool it calls.")
        return {"type": "edit", "args": edited.get("args")}
    return {key: value[key] for key in ("type", "message") if key in value}


def _from_human_response(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse('Each answer is a HumanResponse: {"type": "accept" | "edit" | "response" | "ignore", "args"}.')
    kind, args = value.get("type"), value.get("args")
    if kind == "accept":
        return {"type": payloads.APPROVE}
    if kind == "ignore":
        return {"type": payloads.REJECT}
    if kind == "response":
        return {"type": payloads.RESPOND, "message": args}
    if kind == "edit":
        return {"type": payloads.EDIT, "args": args.get("args") if isinstance(args, dict) else None}
    return {"type": kind}


def decisions_for(fmt: str, actions: list[payloads.Action], value: Any) -> list[dict[str, Any]]:
    """The inbox decisions a resume value stands for, one per action (unchecked: see ``check_decisions``).

    Raises ``ValidationError`` keyed ``command.resume`` when the value has none of the accepted shapes.
    """
    if fmt == payloads.HITL:
        if not isinstance(value, dict) or not isinstance(value.get("decisions"), list):
            raise _refuse('This interrupt (HumanInTheLoopMiddleware) is resumed with {"decisions": [...]}, '
                          "one per action.")
        if len(value["decisions"]) != len(actions):
            raise _refuse(f"Give one decision per action: {len(actions)} expected.")
        return [_from_langchain(d, a) for d, a in zip(value["decisions"], actions)]
    if fmt == payloads.TOOL_APPROVAL:
        return [_from_langchain(value, actions[0])]
    if fmt == payloads.AGENT_INBOX:
        items = value if isinstance(value, list) else [value]
        if len(items) != len(actions):
            raise _refuse(f"Give one HumanResponse per action: {len(actions)} expected.")
        return [_from_human_response(item) for item in items]
    # A plain interrupt, a breakpoint or a fork's hold: one decision in Loopgate's words.
    if not isinstance(value, dict) or value.get("type") not in payloads.ALL_DECISIONS:
        raise _refuse(f"This interrupt is resumed with a reviewer's decision: {PLAIN_SHAPES}.")
    decision = {key: value[key] for key in ("type", "message", "args") if key in value}
    return [dict(decision) for _ in actions]
