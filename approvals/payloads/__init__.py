"""Interrupt payload formats, recognised from the value a graph passed to ``interrupt()``.

Pure functions, no database. One module per format, each a ``PayloadFormat``
(``base.py``): recognise the value, describe its actions, validate a decision,
build the resume value and the timeout answer. A new format is one new module
and its line in ``FORMATS`` below. Every format is shown the same way: a list of
actions ``{"name", "args", "description", "allowed_decisions", "args_schema"}``.
Decisions use Loopgate's vocabulary: approve, edit, reject, respond.

- LangChain ``HumanInTheLoopMiddleware`` (batched): ``{"action_requests": [...],
  "review_configs": [...]}``; resumed with ``{"decisions": [...]}``.
- LangChain per-call tool approval: ``{"type": "tool_approval", "tool_call_id",
  "name", "args", "description"}``; resumed with one decision.
- Agent Inbox ``HumanInterrupt``: ``[{"action_request": {"action", "args"},
  "config": {allow_accept, allow_edit, allow_respond, allow_ignore},
  "description"}]``; resumed with a list of ``HumanResponse``.
- Anything else (a plain value): approve, reject or respond with text. A plain
  dict may opt in to other decisions with ``"allowed_decisions"`` (Edit too) and
  give its editable arguments a JSON schema with ``"args_schema"``.

Resume values (what ``resume_value()`` returns, what the graph receives):

=============  =====================================================================
format         resume value
=============  =====================================================================
hitl           ``{"decisions": [d, ...]}``, one per action in order, each
               ``{"type": "approve"}``, ``{"type": "edit", "edited_action":
               {"name", "args"}}``, ``{"type": "reject"[, "message"]}`` or
               ``{"type": "respond", "message"}`` (LangChain's ``HITLResponse``)
tool_approval  one such decision dict (LangChain's per-call mode)
agent_inbox    ``[HumanResponse, ...]``, one per action: ``{"type": "accept",
               "args": None}``, ``{"type": "edit", "args": {"action", "args"}}``,
               ``{"type": "response", "args": "text"}``, ``{"type": "ignore",
               "args": None}`` (Approve, Edit, Respond, Reject)
plain          ``{"type": "approve", "by": username}``, ``{"type": "reject",
               "message": "…", "by": …}``, ``{"type": "respond", "message": "…",
               "by": …}``, ``{"type": "edit", "args": {...}, "by": …}`` where
               allowed; a reviewer's comment is added as ``"comment"``
breakpoint     not sent to the graph: approve continues, reject cancels
=============  =====================================================================

When an approval expires unanswered (``timeout_value()``): a plain value or a
breakpoint gets ``{"type": "timeout"}`` (graphs route on it; a breakpoint's
execution is cancelled); the structured formats get their own refusal, so a
graph written for them runs unchanged: every action rejected with
``TIMEOUT_MESSAGE`` (Agent Inbox: ``ignore``), or, where the payload allows no
refusal, a ``respond``/``response`` with that message; where it allows neither,
``None``, and the execution is cancelled.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals.payloads.agent_inbox import AgentInboxFormat
from approvals.payloads.base import (
    ALL_DECISIONS, ANY_OBJECT, APPROVE, DECISION_LABELS, EDIT, MAX_MESSAGE, REJECT, RESPOND, TIMEOUT_MESSAGE,
    Action, Decision, PayloadFormat, edit_schema, validate_args,
)
from approvals.payloads.breakpoint import BreakpointFormat, breakpoint_actions
from approvals.payloads.hitl import HitlFormat
from approvals.payloads.plain import PlainFormat
from approvals.payloads.tool_approval import ToolApprovalFormat

# In the order they are tried: the first that recognises a value wins; plain takes anything.
FORMATS: tuple[PayloadFormat, ...] = (HitlFormat(), ToolApprovalFormat(), AgentInboxFormat(), PlainFormat())
# Made by the runner, never recognised from a value.
_MADE_BY_LOOPGATE: tuple[PayloadFormat, ...] = (BreakpointFormat(),)
_BY_NAME = {fmt.name: fmt for fmt in (*FORMATS, *_MADE_BY_LOOPGATE)}

HITL, TOOL_APPROVAL, AGENT_INBOX, PLAIN, BREAKPOINT = (
    HitlFormat.name, ToolApprovalFormat.name, AgentInboxFormat.name, PlainFormat.name, BreakpointFormat.name
)

__all__ = [
    "AGENT_INBOX", "ALL_DECISIONS", "ANY_OBJECT", "APPROVE", "BREAKPOINT", "DECISION_LABELS", "EDIT", "FORMATS",
    "HITL", "MAX_MESSAGE", "PLAIN", "REJECT", "RESPOND", "TIMEOUT_MESSAGE", "TOOL_APPROVAL", "Action", "Decision",
    "PayloadFormat", "breakpoint_actions", "check_decisions", "deadline_from", "edit_schema", "format_named",
    "ordered", "parse", "resume_value", "status_of", "timeout_value", "validate_args",
]


def format_named(name: str) -> PayloadFormat:
    """The format an approval was recorded with (``Approval.format``); unknown names read as plain."""
    return _BY_NAME.get(name, _BY_NAME[PLAIN])


def parse(value: Any, response_schema: Any = None) -> tuple[str, list[Action]]:
    """Recognise the payload format and return ``(format, actions)``."""
    fmt = next(fmt for fmt in FORMATS if fmt.recognises(value))
    actions = fmt.actions(value, response_schema)
    for action in actions:
        names = list(action.get("args") or {})
        schema = action.get("args_schema") or {}
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        action["arg_names"] = names + [key for key in props if key not in names]
    return fmt.name, actions


def ordered(keys: Any, action: Action) -> list[str]:
    """``keys`` in the action's argument order (unknown keys last, as they come)."""
    order = {name: i for i, name in enumerate(action.get("arg_names") or [])}
    keys = list(keys)
    return sorted(keys, key=lambda k: (order.get(k, len(order)), keys.index(k)))


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


# --- decisions ------------------------------------------------------------------------------


def check_decisions(actions: list[Action], decisions: Any, *, fmt: str = PLAIN) -> list[Decision]:
    """Validate decisions completely against what the payload allows and return
    them normalised, or raise ``ValidationError`` keyed ``"<i>.type"``,
    ``"<i>.message"``, ``"<i>.args"`` or ``"<i>.args.<path>"`` (``"__all__"`` for
    the list itself). Nothing may reach the graph unchecked: LangGraph stores a
    resume value before the node runs, and a malformed one cannot be taken back.
    """
    if not isinstance(decisions, (list, tuple)) or len(decisions) != len(actions):
        raise ValidationError(
            {"__all__": [f"Give one decision per action: {len(actions)} expected."]}
        )
    payload_format = format_named(fmt)
    errors: dict[str, list[str]] = {}
    out: list[Decision] = []
    for index, (action, raw) in enumerate(zip(actions, decisions)):
        decision, problems = payload_format.check_decision(action, raw)
        for key, messages in problems.items():
            errors[f"{index}.{key}"] = messages
        if decision is not None:
            out.append(decision)
    if errors:
        raise ValidationError(errors)
    return out


def status_of(decisions: list[Decision]) -> str:
    """The approval's status for a set of decisions: edited > responded > rejected > approved.

    One action: its own decision. Several: the strongest change wins, so an
    approval with one edited action reads "edited"; each action's own decision
    stays in ``Approval.decision``.
    """
    kinds = {d["type"] for d in decisions}
    for kind, status in ((EDIT, "edited"), (RESPOND, "responded"), (REJECT, "rejected")):
        if kind in kinds:
            return status
    return "approved"


def resume_value(fmt: str, actions: list[Action], decisions: list[Decision], *, by: str = "",
                 comment: str = "") -> Any:
    """The value the graph is resumed with, in the shape its format expects (see the module docstring)."""
    return format_named(fmt).resume_value(actions, decisions, by=by, comment=comment)


def timeout_value(fmt: str, actions: list[Action]) -> Any:
    """What an expired approval resumes the graph with (see the module docstring); None: cancel instead."""
    return format_named(fmt).timeout_value(actions)
