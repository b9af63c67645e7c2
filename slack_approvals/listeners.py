"""The Slack integration hears about approvals here (``approvals.events``) and queues its tasks.

Called after commit, in whatever process made the change: nothing here talks to Slack.
"""

from __future__ import annotations

import logging
from uuid import UUID

from slack_approvals import client

logger = logging.getLogger(__name__)


def on_approval_event(event: str, approval_ids: list[UUID]) -> None:
    if not client.enabled():
        return
    from slack_approvals import tasks

    for approval_id in approval_ids:
        if event == "created":
            tasks.post_request.delay(str(approval_id))
        elif event in ("decided", "cancelled", "expired"):
            tasks.update_request.delay(str(approval_id))
        if event == "expired":
            tasks.post_escalation.delay(str(approval_id))
