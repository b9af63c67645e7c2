"""Celery tasks of the Slack integration: every call to Slack's Web API runs here, never in a
request or a transaction. Arguments are ids as strings; each task re-reads the database.

Transient failures (rate limits, Slack's 5xx, the network) retry with exponential backoff
(5 s, 10 s … ten minutes, jittered, eight times); permanent ones are logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from celery import shared_task

from slack_approvals import client, delivery

logger = logging.getLogger(__name__)

RETRY = {
    "autoretry_for": (client.TransientSlackError,),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
    "ignore_result": True,
}


def _deliver(what: str, work: Callable[[], str]) -> str:
    """Run one delivery; a permanent Slack error is logged, a transient one raised for a retry."""
    if not client.enabled():
        return "Slack is not configured"
    try:
        return work()
    except client.TransientSlackError:
        logger.warning("%s failed; retrying", what, exc_info=True)
        raise
    except client.SlackError as exc:
        logger.error("%s not done (permanent): %s", what, exc)
        return f"failed: {exc}"


@shared_task(**RETRY)
def post_request(approval_id: str) -> str:
    return _deliver(f"posting approval {approval_id} to Slack",
                    lambda: delivery.post_request(UUID(approval_id)))


@shared_task(**RETRY)
def update_request(approval_id: str) -> str:
    return _deliver(f"updating the Slack message of approval {approval_id}",
                    lambda: delivery.update_request(UUID(approval_id)))


@shared_task(**RETRY)
def post_escalation(approval_id: str) -> str:
    return _deliver(f"escalating approval {approval_id} in Slack",
                    lambda: delivery.post_escalation(UUID(approval_id)))


@shared_task(**RETRY)
def post_ephemeral(channel: str, user: str, text: str) -> str:
    return _deliver(f"answering Slack user {user}", lambda: delivery.post_ephemeral(channel, user, text))


@shared_task(**{**RETRY, "max_retries": 1})  # a trigger id lives three seconds: no point trying for long
def open_edit_modal(trigger_id: str, approval_id: str, metadata: dict[str, Any]) -> str:
    return _deliver(f"opening the Edit modal of approval {approval_id}",
                    lambda: delivery.open_edit_modal(trigger_id, UUID(approval_id), metadata))
