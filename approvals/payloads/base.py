"""What every payload format shares: Loopgate's decision vocabulary, the shape of an
action and of a decision, and ``PayloadFormat``, the interface one format implements."""

from __future__ import annotations

import copy
from typing import Any, ClassVar, TypedDict

from orchestrator import json_schema

APPROVE, EDIT, REJECT, RESPOND = "approve", "edit", "reject", "respond"
ALL_DECISIONS = (APPROVE, EDIT, REJECT, RESPOND)
DECISION_LABELS = {APPROVE: "Approve", EDIT: "Edit", REJECT: "Reject", RESPOND: "Respond"}

TIMEOUT_MESSAGE = "No reviewer answered before the deadline; the action was not approved."
MAX_MESSAGE = 10_000

# Edits of an action whose payload gives no argument schema (LangChain's batched
# middleware never sends one): any JSON object. Nothing in the payload says which
# types or keys the tool takes, so a reviewer may change a type ("3" → 3) or add
# an argument; the tool itself validates what it receives.
ANY_OBJECT: dict[str, Any] = {"type": "object"}


class Action(TypedDict, total=False):
    name: str
    args: dict[str, Any]
    description: str
    allowed_decisions: list[str]
    args_schema: dict[str, Any] | None
    # The order the graph gave the arguments in (Postgres' jsonb keeps no key order).
    arg_names: list[str]


class Decision(TypedDict, total=False):
    """A decision in Loopgate's vocabulary, one per action: ``type`` is approve, edit,
    reject or respond; ``args`` the edited arguments (edit); ``message`` the text
    sent back (reject, optional; respond, required)."""

    type: str
    args: dict[str, Any]
    message: str


class PayloadFormat:
    """One interrupt payload format. A new format is a module of this package with a
    subclass, listed in ``FORMATS`` (``approvals/payloads/__init__.py``).

    ``recognises`` and ``actions`` read the value a graph passed to ``interrupt()``;
    ``check_decision`` validates one reviewer decision against its action;
    ``resume_value`` and ``timeout_value`` build what the graph is resumed with.
    """

    name: ClassVar[str]

    def recognises(self, value: Any) -> bool:
        raise NotImplementedError

    def actions(self, value: Any, response_schema: Any = None) -> list[Action]:
        """The payload as actions, each with the decisions it allows."""
        raise NotImplementedError

    def check_decision(self, action: Action, raw: Any) -> tuple[Decision | None, dict[str, list[str]]]:
        """``(decision, {})`` normalised, or ``(None, errors)`` keyed ``"type"``, ``"message"``,
        ``"args"`` or ``"args.<path>"``. Every format allows what its actions' ``allowed_decisions``
        name: the rule below fits them all; a format with stricter rules overrides it."""
        raw = raw if isinstance(raw, dict) else {}
        kind = raw.get("type")
        allowed = list(action.get("allowed_decisions") or [])
        name = action.get("name", "action")
        if kind not in allowed:
            words = ", ".join(DECISION_LABELS.get(d, d) for d in allowed)
            if kind in DECISION_LABELS:
                return None, {"type": [f"{DECISION_LABELS[kind]} is not allowed for {name}; choose {words}."]}
            return None, {"type": [f"Choose a decision for {name}: {words}."]}
        message = raw.get("message")
        if message is None:
            message = ""
        if not isinstance(message, str):
            return None, {"message": ["The message must be text."]}
        message = message.strip()
        if len(message) > MAX_MESSAGE:
            return None, {"message": [f"Keep the message under {MAX_MESSAGE:,} characters."]}
        decision = Decision(type=kind)
        if kind == EDIT:
            args = raw.get("args")
            schema, _given = edit_schema(action)
            arg_errors = validate_args(args, schema)
            if arg_errors:
                return None, {"args" + (f".{path}" if path else ""): messages for path, messages in arg_errors.items()}
            decision["args"] = copy.deepcopy(args)
        elif kind == RESPOND:
            if not message:
                return None, {"message": ["Write the answer to send back to the agent."]}
            decision["message"] = message
        elif kind == REJECT:
            decision["message"] = message
        return decision, {}

    def resume_value(self, actions: list[Action], decisions: list[Decision], *, by: str = "",
                     comment: str = "") -> Any:
        raise NotImplementedError

    def timeout_value(self, actions: list[Action]) -> Any:
        """What an expired approval resumes the graph with; None: cancel the execution instead.

        The structured formats get their own refusal, so a graph written for them
        runs unchanged: every action rejected with ``TIMEOUT_MESSAGE``, or, where
        the payload allows no refusal, answered with it; where it allows neither, None.
        """
        allowed = [set(a.get("allowed_decisions") or []) for a in actions]
        if all(REJECT in a for a in allowed):
            decisions = [Decision(type=REJECT, message=TIMEOUT_MESSAGE) for _ in actions]
        elif all(RESPOND in a for a in allowed):
            decisions = [Decision(type=RESPOND, message=TIMEOUT_MESSAGE) for _ in actions]
        else:
            return None
        return self.resume_value(actions, decisions)


def edit_schema(action: Action) -> tuple[dict[str, Any], bool]:
    """``(schema, given)``: the action's own argument schema, or ``ANY_OBJECT`` when it has none."""
    schema = action.get("args_schema")
    if isinstance(schema, dict) and schema:
        return schema, True
    return ANY_OBJECT, False


def validate_args(args: Any, schema: dict[str, Any]) -> dict[str, list[str]]:
    """Errors of edited arguments against a JSON schema, by argument path (``"to"``,
    ``"items.0.qty"``; ``""`` for the whole object). Empty when valid."""
    if not isinstance(args, dict):
        return {"": ["The arguments must be a JSON object ({…})."]}
    if isinstance(schema.get("properties"), dict) and "additionalProperties" not in schema:
        # A tool takes the arguments its schema names: an edit may not add others, unless it says so.
        schema = {**schema, "additionalProperties": False}
    return json_schema.errors_by_path(args, schema)


def as_args(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"value": value}


def description_of(text: Any, name: str) -> str:
    """The payload's description, without the ``Tool: name / Args: {...}`` lines LangChain's
    middleware appends by default (the argument table shows them, readably)."""
    text = str(text or "")
    cut = text.find(f"\n\nTool: {name}\nArgs: ")
    return text[:cut].rstrip() if cut >= 0 else text


def schema_or_none(schema: Any) -> dict[str, Any] | None:
    """A payload's argument schema, or None when it is not one: a broken schema must not block every edit."""
    return schema if json_schema.is_valid_schema(schema) else None
