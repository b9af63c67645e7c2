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

import copy
import datetime
import json
from typing import Any, TypedDict

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

APPROVE, EDIT, REJECT, RESPOND = "approve", "edit", "reject", "respond"
ALL_DECISIONS = (APPROVE, EDIT, REJECT, RESPOND)

HITL, TOOL_APPROVAL, AGENT_INBOX, PLAIN, BREAKPOINT = "hitl", "tool_approval", "agent_inbox", "plain", "breakpoint"

TIMEOUT_MESSAGE = "No reviewer answered before the deadline; the action was not approved."
MAX_MESSAGE = 10_000
DECISION_LABELS = {APPROVE: "Approve", EDIT: "Edit", REJECT: "Reject", RESPOND: "Respond"}
# Keys of a plain dict payload that say what it is rather than being its arguments.
_PLAIN_META_KEYS = ("action", "name", "description", "question", "message", "deadline", "timeout_seconds",
                    "allowed_decisions", "args_schema")


class Action(TypedDict, total=False):
    name: str
    args: dict[str, Any]
    description: str
    allowed_decisions: list[str]
    args_schema: dict[str, Any] | None
    # The order the graph gave the arguments in (Postgres' jsonb keeps no key order).
    arg_names: list[str]


def _is_hitl(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action_requests"), list) and "review_configs" in value


def _is_tool_approval(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "tool_approval" and "name" in value


def _is_agent_inbox_item(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action_request"), dict) and "config" in value


def _is_agent_inbox(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_agent_inbox_item(item) for item in value)


def _description(text: Any, name: str) -> str:
    """The payload's description, without the ``Tool: name / Args: {...}`` lines LangChain's
    middleware appends by default (the argument table shows them, readably)."""
    text = str(text or "")
    cut = text.find(f"\n\nTool: {name}\nArgs: ")
    return text[:cut].rstrip() if cut >= 0 else text


def _as_args(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"value": value}


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    """Follow a local ``{"$ref": "#/$defs/Name"}`` (Pydantic's JSON schemas use them)."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
        ref, seen = node["$ref"], seen + 1
        if not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            return node
        node = target
    return node


def _tool_args_schema(response_schema: Any) -> dict[str, Any] | None:
    """Dig the edited tool's argument schema out of a per-call ``response_schema``."""
    if not isinstance(response_schema, dict):
        return None
    stack = [response_schema]
    while stack:
        node = _resolve(stack.pop(), response_schema)
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict) and "edited_action" in props:
                edited = _resolve(props["edited_action"], response_schema)
                args = edited.get("properties", {}).get("args") if isinstance(edited, dict) else None
                args = _resolve(args, response_schema)
                if isinstance(args, dict):
                    schema = dict(args)
                    if "$defs" in response_schema and "$defs" not in schema:
                        schema["$defs"] = response_schema["$defs"]  # nested refs still resolve
                    return schema if _schema_is_valid(schema) else None
            stack.extend(v for k, v in node.items() if k != "$defs" and isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _schema_is_valid(schema: Any) -> bool:
    """A broken schema in a payload must not block every edit: it is then ignored."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        return False
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return False
    return True


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
    fmt, actions = _parse(value, response_schema)
    for action in actions:
        names = list(action.get("args") or {})
        schema = action.get("args_schema") or {}
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        action["arg_names"] = names + [key for key in props if key not in names]
    return fmt, actions


def ordered(keys: Any, action: Action) -> list[str]:
    """``keys`` in the action's argument order (unknown keys last, as they come)."""
    order = {name: i for i, name in enumerate(action.get("arg_names") or [])}
    keys = list(keys)
    return sorted(keys, key=lambda k: (order.get(k, len(order)), keys.index(k)))


def _parse(value: Any, response_schema: Any = None) -> tuple[str, list[Action]]:
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
                    description=_description(request.get("description"), str(request.get("name", "action"))),
                    allowed_decisions=allowed or [APPROVE, REJECT],
                    args_schema=config.get("args_schema") if _schema_is_valid(config.get("args_schema")) else None,
                )
            )
        return HITL, actions
    if _is_tool_approval(value):
        return TOOL_APPROVAL, [
            Action(
                name=str(value["name"]),
                args=_as_args(value.get("args", {})),
                description=_description(value.get("description"), str(value["name"])),
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
    name, description, args = "review", "", {}
    allowed, schema = [APPROVE, REJECT, RESPOND], None
    if isinstance(value, str):
        description = value
    elif isinstance(value, dict):
        name = str(value.get("action") or value.get("name") or "review")
        description = str(value.get("description") or value.get("question") or value.get("message") or "")
        args = {k: v for k, v in value.items() if k not in _PLAIN_META_KEYS}
        if not args and not description:
            args = dict(value)
        # A plain dict may name the decisions it takes (Edit too) and the schema
        # of its editable arguments: a graph opts in, Loopgate never guesses.
        named = value.get("allowed_decisions")
        if isinstance(named, list) and any(d in ALL_DECISIONS for d in named):
            allowed = [d for d in ALL_DECISIONS if d in named]
        if isinstance(value.get("args_schema"), dict) and _schema_is_valid(value["args_schema"]):
            schema = value["args_schema"]
    elif value is not None:
        args = {"value": value}
    return PLAIN, [
        Action(name=name, args=args, description=description, allowed_decisions=allowed, args_schema=schema)
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


# --- decisions ------------------------------------------------------------------------------


class Decision(TypedDict, total=False):
    """A decision in Loopgate's vocabulary, one per action: ``type`` is approve, edit,
    reject or respond; ``args`` the edited arguments (edit); ``message`` the text
    sent back (reject, optional; respond, required)."""

    type: str
    args: dict[str, Any]
    message: str


# Edits of an action whose payload gives no argument schema (LangChain's batched
# middleware never sends one): any JSON object. Nothing in the payload says which
# types or keys the tool takes, so a reviewer may change a type ("3" → 3) or add
# an argument; the tool itself validates what it receives.
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def edit_schema(action: Action) -> tuple[dict[str, Any], bool]:
    """``(schema, given)``: the action's own argument schema, or ``ANY_OBJECT`` when it has none."""
    schema = action.get("args_schema")
    if isinstance(schema, dict) and schema:
        return schema, True
    return ANY_OBJECT, False


def _error_path(error: Any) -> str:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [key for key in error.validator_value if key not in error.instance]
        if missing:
            path.append(str(missing[0]))
    return ".".join(path)


def _error_message(error: Any) -> str:
    if error.validator == "required":
        return "This field is required."
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"Must be {'an' if str(wanted)[:1] in 'aeiou' else 'a'} {wanted}."
    if error.validator == "enum":
        return "Must be one of: " + ", ".join(json.dumps(v, ensure_ascii=False) for v in error.validator_value) + "."
    if error.validator == "format":
        return f"Not a valid {error.validator_value}."
    return str(error.message)


def validate_args(args: Any, schema: dict[str, Any]) -> dict[str, list[str]]:
    """Errors of edited arguments against a JSON schema, by argument path (``"to"``,
    ``"items.0.qty"``; ``""`` for the whole object). Empty when valid."""
    from jsonschema import Draft202012Validator, FormatChecker

    if not isinstance(args, dict):
        return {"": ["The arguments must be a JSON object ({…})."]}
    errors: dict[str, list[str]] = {}
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for error in sorted(validator.iter_errors(args), key=lambda e: list(map(str, e.absolute_path))):
        errors.setdefault(_error_path(error), []).append(_error_message(error))
    return errors


def check_decisions(actions: list[Action], decisions: Any) -> list[Decision]:
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
    errors: dict[str, list[str]] = {}
    out: list[Decision] = []
    for index, (action, raw) in enumerate(zip(actions, decisions)):
        raw = raw if isinstance(raw, dict) else {}
        kind = raw.get("type")
        allowed = list(action.get("allowed_decisions") or [])
        name = action.get("name", "action")
        if kind not in allowed:
            words = ", ".join(DECISION_LABELS.get(d, d) for d in allowed)
            if kind in DECISION_LABELS:
                errors[f"{index}.type"] = [f"{DECISION_LABELS[kind]} is not allowed for {name}; choose {words}."]
            else:
                errors[f"{index}.type"] = [f"Choose a decision for {name}: {words}."]
            continue
        message = raw.get("message")
        if message is None:
            message = ""
        if not isinstance(message, str):
            errors[f"{index}.message"] = ["The message must be text."]
            continue
        message = message.strip()
        if len(message) > MAX_MESSAGE:
            errors[f"{index}.message"] = [f"Keep the message under {MAX_MESSAGE:,} characters."]
            continue
        decision = Decision(type=kind)
        if kind == EDIT:
            args = raw.get("args")
            schema, _given = edit_schema(action)
            arg_errors = validate_args(args, schema)
            if arg_errors:
                for path, messages in arg_errors.items():
                    errors[f"{index}.args" + (f".{path}" if path else "")] = messages
                continue
            decision["args"] = copy.deepcopy(args)
        elif kind == RESPOND:
            if not message:
                errors[f"{index}.message"] = ["Write the answer to send back to the agent."]
                continue
            decision["message"] = message
        elif kind == REJECT:
            decision["message"] = message
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
    if fmt == HITL:
        return {"decisions": [_langchain_decision(a, d) for a, d in zip(actions, decisions)]}
    if fmt == TOOL_APPROVAL:
        return _langchain_decision(actions[0], decisions[0])
    if fmt == AGENT_INBOX:
        return [_human_response(a, d) for a, d in zip(actions, decisions)]
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


def _langchain_decision(action: Action, decision: Decision) -> dict[str, Any]:
    kind = decision["type"]
    if kind == EDIT:
        return {"type": "edit", "edited_action": {"name": action["name"], "args": decision["args"]}}
    if kind == RESPOND:
        return {"type": "respond", "message": decision["message"]}
    if kind == REJECT:
        return {"type": "reject", "message": decision["message"]} if decision.get("message") else {"type": "reject"}
    return {"type": "approve"}


def _human_response(action: Action, decision: Decision) -> dict[str, Any]:
    kind = decision["type"]
    if kind == EDIT:
        return {"type": "edit", "args": {"action": action["name"], "args": decision["args"]}}
    if kind == RESPOND:
        return {"type": "response", "args": decision["message"]}
    if kind == REJECT:
        return {"type": "ignore", "args": None}
    return {"type": "accept", "args": None}


def timeout_value(fmt: str, actions: list[Action]) -> Any:
    """What an expired approval resumes the graph with (see the module docstring); None: cancel instead."""
    if fmt in (PLAIN, BREAKPOINT):
        return {"type": "timeout"}
    allowed = [set(a.get("allowed_decisions") or []) for a in actions]
    if all(REJECT in a for a in allowed):
        decisions = [Decision(type=REJECT, message=TIMEOUT_MESSAGE) for _ in actions]
    elif all(RESPOND in a for a in allowed):
        decisions = [Decision(type=RESPOND, message=TIMEOUT_MESSAGE) for _ in actions]
    else:
        return None
    return resume_value(fmt, actions, decisions)
