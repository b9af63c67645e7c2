"""Slack's interactivity callbacks, once verified: button clicks (``block_actions``) and the Edit
modal's submission (``view_submission``).

A click counts as the Loopgate user its Slack user is linked to (``SlackIdentity``); it decides
through ``approvals.services.approval_decide``, exactly as the inbox does (same permission
checks, validation, audit and race handling). Everything said back to Slack goes through a
task: the clicker's ephemeral answers, the modal, the message update (after commit, from the
approvals' own "decided" event).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import reverse

from approvals import payloads
from approvals import services as approvals
from approvals.models import Approval
from orchestrator.errors import AlreadyDecided, InvalidState, PermissionDenied
from slack_approvals import blocks, selectors, tasks
from slack_approvals.blocks import escape

logger = logging.getLogger(__name__)

LINK_SALT = "slack_approvals.link"
LINK_MAX_AGE_SECONDS = 60 * 60


@dataclass
class Answer:
    """What the endpoint answers Slack: an empty 200, or a JSON body (the modal's errors)."""

    body: dict[str, Any] | None = None
    status: int = 200
    errors: dict[str, str] = field(default_factory=dict)


def link_token(team_id: str, slack_user_id: str) -> str:
    return signing.dumps({"t": team_id, "u": slack_user_id}, salt=LINK_SALT, compress=True)


def read_link_token(token: str) -> tuple[str, str]:
    """The (team, user) a link token names; ``signing.BadSignature`` when forged or too old."""
    data = signing.loads(token, salt=LINK_SALT, max_age=LINK_MAX_AGE_SECONDS)
    return str(data["t"]), str(data["u"])


def link_url(team_id: str, slack_user_id: str) -> str:
    path = reverse("slack_approvals:link", args=[link_token(team_id, slack_user_id)])
    return f"{settings.LOOPGATE_SITE_URL}{path}"


def _obj(value: Any) -> dict[str, Any]:
    """A part of Slack's payload that should be an object; anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def _who(payload: dict[str, Any]) -> tuple[str, str]:
    user, team = _obj(payload.get("user")), _obj(payload.get("team"))
    return str(team.get("id") or user.get("team_id") or ""), str(user.get("id") or "")


def _unlinked_text(team_id: str, slack_user_id: str) -> str:
    return ("Your Slack account is not linked to a Loopgate user, so Loopgate cannot take this decision from "
            f"you. <{link_url(team_id, slack_user_id)}|Link your Slack account> (the link works for an hour), "
            "or ask an admin to link it; then click again.")


def already_text(approval: Approval) -> str:
    status = approval.status
    if status == Approval.Status.EXPIRED:
        return "Too late: this approval expired unanswered and was escalated."
    if status == Approval.Status.CANCELLED:
        return "No longer needed: the execution ended or was cancelled."
    who = escape(approval.decided_by.get_username()) if approval.decided_by else "someone"
    label = blocks.OUTCOMES.get(status, ("", approval.get_status_display()))[1].lower()
    when = f" {blocks.slack_date(approval.decided_at)}" if approval.decided_at else ""
    return f"Already {label} by {who}{when}; your click changed nothing."


# --- block_actions ------------------------------------------------------------------------------


def handle_block_actions(payload: dict[str, Any]) -> Answer:
    team_id, slack_user_id = _who(payload)
    channel = str(_obj(payload.get("channel")).get("id") or _obj(payload.get("container")).get("channel_id") or "")
    actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
    for action in actions:
        if not isinstance(action, dict) or action.get("action_id") not in (blocks.APPROVE, blocks.REJECT,
                                                                              blocks.EDIT):
            continue  # "Open in Loopgate" is a link; Slack tells us of the click all the same
        reply = _click(action, team_id, slack_user_id, payload)
        if reply and channel:
            tasks.post_ephemeral.delay(channel, slack_user_id, reply)
    return Answer()


def _approval_id(action: dict[str, Any]) -> UUID | None:
    try:
        return UUID(str(action.get("value")))
    except ValueError:
        return None


def _click(action: dict[str, Any], team_id: str, slack_user_id: str, payload: dict[str, Any]) -> str:
    """Act on one button; returns what to tell the clicker (nothing when the message update says it)."""
    approval_id = _approval_id(action)
    approval = selectors.approval_for_slack(approval_id) if approval_id else None
    if approval is None:
        return "Loopgate does not know this approval any more."
    user = selectors.identity_user(team_id=team_id, slack_user_id=slack_user_id)
    if user is None:
        return _unlinked_text(team_id, slack_user_id)
    kind = action["action_id"]
    if kind == blocks.EDIT:
        if not approval.is_pending:
            tasks.update_request.delay(str(approval.id))
            return already_text(approval)
        trigger = str(payload.get("trigger_id") or "")
        tasks.open_edit_modal.delay(trigger, str(approval.id), {"approval": str(approval.id)})
        return ""
    decision = payloads.APPROVE if kind == blocks.APPROVE else payloads.REJECT
    decisions = [{"type": decision} for _ in approval.actions or []]
    try:
        approvals.approval_decide(approval_id=approval.id, user=user, decisions=decisions, via="slack")
    except AlreadyDecided as exc:
        # Someone decided first (the inbox, the API, another click): the message says who, and so do we.
        tasks.update_request.delay(str(approval.id))
        return already_text(selectors.approval_for_slack(exc.approval.id) or exc.approval)
    except (PermissionDenied, InvalidState) as exc:
        return f"Not decided: {escape(exc.message)}"
    except ValidationError as exc:
        return f"Not decided: {escape(' '.join(exc.messages))} Decide it in Loopgate instead."
    return ""


# --- view_submission (the Edit modal) -----------------------------------------------------------


def handle_view_submission(payload: dict[str, Any]) -> Answer:
    view = _obj(payload.get("view"))
    if view.get("callback_id") != blocks.EDIT_CALLBACK:
        return Answer()
    values = {k: v for k, v in _obj(_obj(view.get("state")).get("values")).items() if isinstance(v, dict)}
    try:
        approval_id = UUID(str(json.loads(str(view.get("private_metadata") or "{}")).get("approval")))
    except (ValueError, AttributeError):
        return _errors(values, {}, "This form is not one Loopgate made.")
    approval = selectors.approval_for_slack(approval_id)
    team_id, slack_user_id = _who(payload)
    user = selectors.identity_user(team_id=team_id, slack_user_id=slack_user_id)
    if approval is None:
        return _errors(values, {}, "Loopgate does not know this approval any more.")
    if user is None:
        return _errors(values, {}, "Your Slack account is not linked to a Loopgate user: click Approve or Reject "
                                   "on the message to get a link.")
    args, comment, errors = blocks.edit_submission(approval, values)
    if errors:
        return _errors(values, errors)
    try:
        approvals.approval_decide(approval_id=approval.id, user=user, decisions=[{"type": payloads.EDIT,
                                                                                   "args": args}],
                                  comment=comment, via="slack")
    except AlreadyDecided as exc:
        tasks.update_request.delay(str(approval.id))
        fresh = selectors.approval_for_slack(exc.approval.id) or exc.approval
        return _errors(values, {}, _plain_already(fresh))
    except (PermissionDenied, InvalidState) as exc:
        return _errors(values, {}, f"Not decided: {exc.message}")
    except ValidationError as exc:
        return _errors(values, blocks.service_errors(approval, exc, values))
    return Answer()  # an empty 200 closes the modal; the message update follows the decision


def _plain_already(approval: Approval) -> str:
    """Modal errors are plain text: no Slack date tokens there."""
    if approval.status in (Approval.Status.EXPIRED, Approval.Status.CANCELLED):
        return f"Too late: this approval is {approval.get_status_display()}."
    who = approval.decided_by.get_username() if approval.decided_by else "someone"
    return f"Already {approval.get_status_display()} by {who}; nothing was changed."


def _errors(values: dict[str, Any], errors: dict[str, str], general: str = "") -> Answer:
    """Slack's way to refuse a submission: ``response_action: errors``, keyed by input block."""
    if general:
        first = next((b for b in values if b != blocks.COMMENT_BLOCK), blocks.COMMENT_BLOCK)
        errors = {**errors, first: blocks.clip(general, 500)}
    return Answer(body={"response_action": "errors", "errors": errors}, errors=errors)
