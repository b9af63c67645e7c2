"""Block Kit for approvals: the message, the escalation, the Edit modal and what it submits.

Pure functions of rows already read (no queries of their own). Text from the graph
(action names, arguments, descriptions, comments) goes out as ``plain_text``, which Slack
never parses for mentions or links, and never into ``mrkdwn`` unescaped: an agent cannot
ping ``@channel`` or dress up a link. Only Loopgate's own words use ``mrkdwn``.

The Edit modal is built from the action's argument schema the way the approval page builds
its typed fields (``approvals.forms.field_kind``): text, numbers, a checkbox, a select, a
fixed value shown read-only, JSON for the rest.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError

from approvals import payloads
from approvals.forms import LONG_TEXT_KEYS, field_kind
from approvals.models import Approval
from orchestrator.forms import parse_json

APPROVE, REJECT, EDIT, OPEN = "approve", "reject", "edit", "open"
EDIT_CALLBACK = "loopgate_edit"
COMMENT_BLOCK = "comment"
ARGS_BLOCK = "args"  # the one JSON box of an action with no per-argument schema
MAX_TEXT = 2900  # a section's text may hold 3,000 characters
MAX_INITIAL = 3000  # a text input's initial value, likewise
MAX_FIELDS = 10  # fields of one section
OUTCOMES = {
    Approval.Status.APPROVED: ("✅", "Approved"),
    Approval.Status.EDITED: ("✏️", "Approved with edits"),
    Approval.Status.REJECTED: ("⛔", "Rejected"),
    Approval.Status.RESPONDED: ("💬", "Answered"),
    Approval.Status.FORKED: ("🔀", "Continued in a fork"),
}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: ``&``, ``<`` and ``>`` only (its control characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": False}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def slack_date(moment: Any, fmt: str = "{date_short_pretty} at {time}") -> str:
    """A time every reader sees in their own time zone; the ISO time where Slack cannot."""
    return f"<!date^{int(moment.timestamp())}^{fmt}|{moment.isoformat(timespec='minutes')}>"


def shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# --- the approval message -----------------------------------------------------------------------


def fallback_text(approval: Approval) -> str:
    """The notification's text (and what clients without blocks show): mrkdwn, so escaped."""
    return escape(clip(f"Approval waiting: {approval.title} ({approval.execution.graph_name})", 300))


def action_blocks(approval: Approval) -> list[dict[str, Any]]:
    """What the agent wants to do: per action its name, description and arguments."""
    blocks: list[dict[str, Any]] = []
    actions = [a for a in approval.actions or [] if isinstance(a, dict)]
    for action in actions[:5]:
        if len(actions) > 1:
            blocks.append({"type": "section", "text": plain(str(action.get("name", "")), 150)})
        description = str(action.get("description") or "").strip()
        if description:
            blocks.append({"type": "section", "text": plain(description)})
        args = action.get("args") or {}
        if isinstance(args, dict) and args:
            keys = payloads.ordered(args, action)  # type: ignore[arg-type]
            fields = [plain(f"{key}\n{clip(' '.join(shown(args[key]).split()), 300)}", 1900)
                      for key in keys[:MAX_FIELDS]]
            if len(keys) > MAX_FIELDS:
                fields[-1] = plain(f"… and {len(keys) - MAX_FIELDS + 1} more arguments: open it in Loopgate")
            blocks.append({"type": "section", "fields": fields})
    if len(actions) > 5:
        blocks.append({"type": "section", "text": plain(f"… and {len(actions) - 5} more actions in Loopgate")})
    return blocks


def context_block(approval: Approval, url: str) -> dict[str, Any]:
    """The context line: graph, execution, deadline, and the way to the approval page."""
    execution = approval.execution
    parts = [f"*{escape(execution.graph_name)}*", f"execution `{execution.short_id}`"]
    if approval.deadline is not None and approval.is_pending:
        parts.append(f"due {slack_date(approval.deadline)}")
    parts.append(f"<{url}|Open in Loopgate>")
    return {"type": "context", "elements": [mrkdwn(" · ".join(parts))]}


def buttons(approval: Approval, url: str) -> dict[str, Any]:
    """Approve / Edit / Reject as the payload allows for every action, and the page."""
    actions = [a for a in approval.actions or [] if isinstance(a, dict)]
    allowed = [set(a.get("allowed_decisions") or []) for a in actions]
    value = str(approval.id)
    elements: list[dict[str, Any]] = []
    if allowed and all(payloads.APPROVE in a for a in allowed):
        elements.append({"type": "button", "action_id": APPROVE, "text": plain("Approve", 75), "style": "primary",
                         "value": value})
    if len(allowed) == 1 and payloads.EDIT in allowed[0]:
        elements.append({"type": "button", "action_id": EDIT, "text": plain("Edit", 75), "value": value})
    if allowed and all(payloads.REJECT in a for a in allowed):
        elements.append({"type": "button", "action_id": REJECT, "text": plain("Reject", 75), "style": "danger",
                         "value": value})
    elements.append({"type": "button", "action_id": OPEN, "text": plain("Open in Loopgate", 75), "url": url})
    return {"type": "actions", "block_id": f"approval:{value}", "elements": elements}


def outcome_block(approval: Approval) -> dict[str, Any]:
    """What became of it, in place of the buttons: who decided and when, or that it expired."""
    status = approval.status
    if status == Approval.Status.EXPIRED:
        when = f" {slack_date(approval.decided_at)}" if approval.decided_at else ""
        text = f"⏰ *Expired unanswered*{when}: escalated. Nothing was approved."
    elif status == Approval.Status.CANCELLED:
        text = "🚫 *No longer needed*: the execution ended or was cancelled."
    else:
        icon, label = OUTCOMES.get(status, ("•", approval.get_status_display().capitalize()))
        who = escape(approval.decided_by.get_username()) if approval.decided_by else "someone"
        when = f" {slack_date(approval.decided_at)}" if approval.decided_at else ""
        text = f"{icon} *{label}* by {who}{when}"
    block: dict[str, Any] = {"type": "section", "text": mrkdwn(text)}
    return block


def message_blocks(approval: Approval, url: str) -> list[dict[str, Any]]:
    """The whole message as the approval now stands: buttons while pending, the outcome after."""
    title = f"Approval waiting: {approval.title}" if approval.is_pending else approval.title
    blocks: list[dict[str, Any]] = [{"type": "header", "text": plain(title, 150)}]
    blocks += action_blocks(approval)
    blocks.append(context_block(approval, url))
    if approval.is_pending:
        blocks.append(buttons(approval, url))
    else:
        blocks.append(outcome_block(approval))
        if approval.comment:
            blocks.append({"type": "context", "elements": [plain(f"Comment: {approval.comment}", 1900)]})
    return blocks


def escalation_blocks(approval: Approval, url: str, *, where: str = "") -> tuple[str, list[dict[str, Any]]]:
    """The escalation post: the approval expired unanswered, someone should follow up."""
    execution = approval.execution
    text = escape(clip(f"Expired unanswered: {approval.title} ({execution.graph_name})", 300))
    lines = [f"⏰ *Escalation*: nobody answered *{escape(clip(approval.title, 150))}* on "
             f"*{escape(execution.graph_name)}* (execution `{execution.short_id}`) before its deadline."]
    if where:
        lines.append(f"The request: {where}")
    lines.append(f"<{url}|Open in Loopgate> to see what the graph did next.")
    blocks = [{"type": "section", "text": mrkdwn("\n".join(lines))}] + action_blocks(approval)
    return text, blocks


# --- the Edit modal ---------------------------------------------------------------------------


def _schema(action: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    schema, given = payloads.edit_schema(action)  # type: ignore[arg-type]
    props = schema.get("properties") if given and isinstance(schema.get("properties"), dict) else {}
    required = set(schema.get("required") or []) if isinstance(schema.get("required"), list) else set()
    return schema, props or {}, required


def arg_block_id(key: str) -> str:
    return clip(f"arg:{key}", 255)


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint: str = "") -> dict[str, Any]:
    block = {"type": "input", "block_id": block_id, "label": plain(label or "value", 2000),
             "element": {**element, "action_id": "value"}, "optional": optional}
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def _text_element(value: str, *, multiline: bool) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if value:
        element["initial_value"] = value
    return element


def _arg_block(key: str, prop: dict[str, Any], kind: str, current: Any, *, required: bool) -> dict[str, Any]:
    label, hint = str(prop.get("title") or key), str(prop.get("description") or "")
    block_id = arg_block_id(key)
    if kind == "fixed" or (isinstance(current, str) and len(current) > MAX_INITIAL):
        why = "fixed by the tool" if kind == "fixed" else "too long to edit in Slack: edit it in Loopgate"
        value = (prop["const"] if "const" in prop else prop["enum"][0]) if kind == "fixed" else current
        return {"type": "section", "block_id": block_id, "text": plain(f"{label}: {shown(value)} ({why})")}
    if kind == "string":
        text = current if isinstance(current, str) else ("" if current is None else str(current))
        long_text = key.lower() in LONG_TEXT_KEYS or len(text) > 60 or "\n" in text
        return _input(block_id, label, _text_element(text, multiline=long_text), optional=not required, hint=hint)
    if kind in ("integer", "number"):
        element: dict[str, Any] = {"type": "number_input", "is_decimal_allowed": kind == "number"}
        if isinstance(current, (int, float)) and not isinstance(current, bool):
            element["initial_value"] = str(current)
        for ours, theirs in (("minimum", "min_value"), ("maximum", "max_value")):
            if isinstance(prop.get(ours), (int, float)) and not isinstance(prop.get(ours), bool):
                element[theirs] = str(prop[ours])
        return _input(block_id, label, element, optional=not required, hint=hint)
    if kind == "boolean":
        option = {"text": plain("Yes", 75), "value": "true"}
        element = {"type": "checkboxes", "options": [option]}
        if current is True:
            element["initial_options"] = [option]
        return _input(block_id, label, element, optional=True, hint=hint)
    if kind == "choice":
        options = [{"text": plain(str(v), 75), "value": clip(json.dumps(v), 150)} for v in prop["enum"][:100]]
        element = {"type": "static_select", "options": options}
        chosen = [o for o, v in zip(options, prop["enum"]) if v == current and current is not None]
        if chosen:
            element["initial_option"] = chosen[0]
        return _input(block_id, label, element, optional=not required, hint=hint)
    text = "" if current is None else json.dumps(current, indent=2, ensure_ascii=False)
    return _input(block_id, label, _text_element(clip(text, MAX_INITIAL), multiline=True), optional=not required,
                  hint=(hint + " " if hint else "") + "JSON.")


def edit_modal(approval: Approval, metadata: dict[str, Any]) -> dict[str, Any]:
    """The Edit modal of a one-action approval, prefilled with the agent's arguments."""
    action = approval.actions[0]
    args = dict(action.get("args") or {})
    schema, props, required = _schema(action)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": plain(str(action.get("name", "")), 150)}]
    description = str(action.get("description") or "").strip()
    if description:
        blocks.append({"type": "context", "elements": [plain(description, 1900)]})
    if props:
        for key in payloads.ordered(props, action):  # type: ignore[arg-type]
            kind, _nullable, prop = field_kind(props[key], schema)
            blocks.append(_arg_block(key, prop, kind, args.get(key, prop.get("default")), required=key in required))
    else:
        text = json.dumps(args, indent=2, ensure_ascii=False)
        blocks.append(_input(ARGS_BLOCK, "Arguments (JSON)", _text_element(clip(text, MAX_INITIAL), multiline=True),
                             optional=False))
    blocks.append(_input(COMMENT_BLOCK, "Comment", _text_element("", multiline=True), optional=True,
                         hint="Kept in the audit log."))
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK,
        "private_metadata": json.dumps(metadata),
        "title": plain("Edit and approve", 24),
        "submit": plain("Approve edited", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks[:100],
    }


def _state_value(state: dict[str, Any]) -> Any:
    """What one input element holds, as Slack sends it in ``view.state.values``."""
    kind = state.get("type")
    if kind == "checkboxes":
        return bool(state.get("selected_options"))
    if kind == "static_select":
        option = state.get("selected_option")
        return option.get("value") if isinstance(option, dict) else None
    value = state.get("value")
    return value if isinstance(value, str) else None


def _read_arg(kind: str, raw: Any) -> Any:
    """One submitted value in its schema's type; ``ValidationError`` says what is wrong."""
    if kind == "boolean":
        return bool(raw)
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValidationError("Enter a whole number.") from None
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise ValidationError("Enter a number.") from None
    if kind == "choice":
        try:
            return json.loads(raw)
        except ValueError:
            raise ValidationError("Choose one of the options.") from None
    if kind == "json":
        return parse_json(raw)
    return raw


def edit_submission(approval: Approval, values: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, str]]:
    """The modal's ``state.values`` read back: ``(args, comment, errors by block id)``."""
    action = approval.actions[0]
    schema, props, required = _schema(action)
    # With a schema, the edit is the arguments it names (a tool takes no others); else all of them.
    args = {k: v for k, v in (action.get("args") or {}).items() if not props or k in props}

    def value_of(block_id: str) -> Any:
        state = (values.get(block_id) or {}).get("value")
        return _state_value(state) if isinstance(state, dict) else None

    errors: dict[str, str] = {}
    comment = (value_of(COMMENT_BLOCK) or "").strip()
    if not props:
        try:
            edited = parse_json(value_of(ARGS_BLOCK) or "")
        except ValidationError as exc:
            return args, comment, {ARGS_BLOCK: "; ".join(exc.messages)}
        if not isinstance(edited, dict):
            return args, comment, {ARGS_BLOCK: "The arguments must be a JSON object ({…})."}
        return edited, comment, {}
    for key in props:
        kind, nullable, prop = field_kind(props[key], schema)
        block_id = arg_block_id(key)
        if kind == "fixed" or block_id not in values:
            continue  # shown, not edited: the agent's value stays (and is validated like any other)
        raw = value_of(block_id)
        if kind != "boolean" and (raw is None or raw == ""):
            if key in required and nullable:
                args[key] = None
            elif key in required:
                errors[block_id] = "This field is required."
            else:
                args.pop(key, None)
            continue
        try:
            args[key] = _read_arg(kind, raw)
        except ValidationError as exc:
            errors[block_id] = "; ".join(exc.messages)
    return args, comment, errors


def service_errors(approval: Approval, exc: ValidationError, values: dict[str, Any]) -> dict[str, str]:
    """The decide service's errors (``"0.args.grace_period_minutes"``) on the modal's blocks."""
    inputs = [block_id for block_id in values if block_id != COMMENT_BLOCK]
    fallback = inputs[0] if inputs else COMMENT_BLOCK
    errors: dict[str, list[str]] = {}
    items = exc.message_dict.items() if hasattr(exc, "error_dict") else [("", exc.messages)]
    for key, messages in items:
        parts = key.split(".")
        block_id = fallback
        if key == "comment":
            block_id = COMMENT_BLOCK
        elif parts[1:2] == ["args"] and len(parts) > 2 and arg_block_id(parts[2]) in values:
            block_id = arg_block_id(parts[2])
            if len(parts) > 3:
                messages = [f"{'.'.join(parts[3:])}: {m}" for m in messages]
        elif parts[1:2] == ["args"] and len(parts) > 2:
            messages = [f"{'.'.join(parts[2:])}: {m}" for m in messages]
        errors.setdefault(block_id, []).extend(messages)
    return {block_id: clip(" ".join(messages), 500) for block_id, messages in errors.items()}
