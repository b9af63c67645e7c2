"""What the tasks do: post an approval, bring its message up to date, escalate, answer a clicker.

Every function re-reads the database and is safe to run twice (a redelivered task): a
request is posted once per approval (``SlackMessage``), an update renders the approval as it
now stands. Slack's failures come out of ``client.call`` as ``SlackError``.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from uuid import UUID

from django.conf import settings

from approvals.models import Approval
from approvals.notifications import approval_url
from slack_approvals import blocks, client, selectors, services
from slack_approvals.models import SlackMessage

logger = logging.getLogger(__name__)

SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")
# Keys of an interrupt's payload that name who should be asked: a Slack user id, or a Loopgate
# username whose linked Slack account gets the message (the FinOps example names the owner).
SLACK_USER_KEY, USERNAME_KEYS = "slack_user", ("reviewer", "owner")


def dm_target(approval: Approval) -> str | None:
    """The Slack user the interrupt names, if it names one Loopgate can reach."""
    payload = approval.payload if isinstance(approval.payload, dict) else {}
    named = payload.get(SLACK_USER_KEY)
    if isinstance(named, str) and SLACK_USER.fullmatch(named.strip()):
        return named.strip()
    for key in USERNAME_KEYS:
        if isinstance(payload.get(key), str) and (found := selectors.slack_user_of(payload[key].strip())):
            return found
    return None


def channel_for(graph_name: str) -> str:
    return settings.LOOPGATE_SLACK_CHANNELS.get(graph_name) or settings.LOOPGATE_SLACK_CHANNEL


def post_request(approval_id: UUID) -> str:
    """Post a new approval to the user it names (a DM) or its graph's channel. Returns what happened."""
    approval = selectors.approval_for_slack(approval_id)
    if approval is None:
        return "gone"
    if selectors.message_of(approval.id) is not None:
        return "already posted"
    user = dm_target(approval)
    if user is not None:
        channel = client.call("conversations_open", users=user)["channel"]["id"]
    else:
        channel = channel_for(approval.execution.graph_name)
    if not channel:
        logger.warning("no Slack channel for graph %r: approval %s not posted (set LOOPGATE_SLACK_CHANNEL)",
                       approval.execution.graph_name, approval.id)
        return "no channel"
    url = approval_url(approval)
    answer = client.call("chat_postMessage", channel=channel, text=blocks.fallback_text(approval),
                         blocks=blocks.message_blocks(approval, url), unfurl_links=False)
    message = services.message_record(approval_id=approval.id, kind=SlackMessage.Kind.REQUEST,
                                      channel=str(answer.get("channel") or channel), ts=str(answer["ts"]),
                                      status=approval.status)
    # Decided while we posted: its "decided" update found no message yet, so bring it up to date here.
    approval.refresh_from_db(fields=["status", "decided_by", "decided_at", "comment", "decision"])
    if approval.status != message.rendered_status:
        update_request(approval.id)
    return "posted"


def update_request(approval_id: UUID) -> str:
    """Render the approval's message as the approval now stands (decided, expired, cancelled)."""
    approval = selectors.approval_for_slack(approval_id)
    message = selectors.message_of(approval_id)
    if approval is None or message is None:
        return "nothing to update"
    client.call("chat_update", channel=message.channel, ts=message.ts, text=blocks.fallback_text(approval),
                blocks=blocks.message_blocks(approval, approval_url(approval)))
    services.message_rendered(message_id=message.id, status=approval.status)
    return "updated"


def post_escalation(approval_id: UUID) -> str:
    """Tell the escalation channel that an approval expired unanswered (once)."""
    approval = selectors.approval_for_slack(approval_id)
    channel = settings.LOOPGATE_SLACK_ESCALATION_CHANNEL
    if approval is None or approval.status != Approval.Status.EXPIRED:
        return "not expired"
    if selectors.message_of(approval.id, SlackMessage.Kind.ESCALATION) is not None:
        return "already escalated"
    if not channel:
        logger.warning("no Slack escalation channel: approval %s not escalated in Slack", approval.id)
        return "no channel"
    where = ""
    if (request := selectors.message_of(approval.id)) is not None:
        try:
            where = client.call("chat_getPermalink", channel=request.channel, message_ts=request.ts).get(
                "permalink", "")
        except client.SlackError:
            where = ""  # the escalation matters more than the link back to the request
    text, body = blocks.escalation_blocks(approval, approval_url(approval), where=where)
    answer = client.call("chat_postMessage", channel=channel, text=text, blocks=body, unfurl_links=False)
    services.message_record(approval_id=approval.id, kind=SlackMessage.Kind.ESCALATION,
                            channel=str(answer.get("channel") or channel), ts=str(answer["ts"]),
                            status=approval.status)
    return "escalated"


def post_ephemeral(channel: str, user: str, text: str) -> str:
    """Answer one clicker only (a refusal, who decided first)."""
    client.call("chat_postEphemeral", channel=channel, user=user, text=text)
    return "sent"


def open_edit_modal(trigger_id: str, approval_id: UUID, metadata: dict[str, Any]) -> str:
    approval = selectors.approval_for_slack(approval_id)
    if approval is None or not approval.is_pending:
        return "not pending"
    client.call("views_open", trigger_id=trigger_id, view=blocks.edit_modal(approval, metadata))
    return "opened"
