"""Celery tasks of the approvals app. Arguments are ids as strings (or the exact
webhook body, so every retry signs the same bytes); each task re-reads the
database, so running one twice is harmless. Scheduled in orchestrator/celery.py."""

from __future__ import annotations

import logging
import random

from celery import shared_task

logger = logging.getLogger(__name__)

# Retries 5 s, 10 s … 10 min apart (``backoff``): eight of them span about twenty minutes.
WEBHOOK_MAX_RETRIES = 8
EMAIL_MAX_RETRIES = 8
BACKOFF_MAX_SECONDS = 600


@shared_task(ignore_result=True)
def expire_overdue() -> int:
    from approvals.services import approvals_expire_overdue

    return approvals_expire_overdue()


@shared_task(ignore_result=True)
def notify_created(approval_ids: list[str]) -> int:
    """New approvals: queue a webhook per approval and the reviewers' email (each a task of its own)."""
    from approvals import notifications

    return notifications.notify_created(notifications.parse_ids(approval_ids))


@shared_task(ignore_result=True)
def notify_escalated(approval_ids: list[str]) -> int:
    """Expired approvals: queue a webhook per approval and the escalation email."""
    from approvals import notifications

    return notifications.notify_escalated(notifications.parse_ids(approval_ids))


def backoff(retries: int) -> float:
    """5 s, 10 s, 20 s … up to ten minutes, with a little jitter so retries spread out."""
    base = min(BACKOFF_MAX_SECONDS, 5 * 2**retries)
    return base * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not security


def _retry_or_give_up(task, what: str, exc: Exception, *, permanent: bool) -> int:  # type: ignore[no-untyped-def]
    """Retry the failed delivery with backoff, or give up (permanent, or out of tries) and log it."""
    if permanent:
        logger.error("%s not sent (permanent): %s", what, exc)
        return 0
    if task.request.retries >= task.max_retries:
        logger.error("%s not sent after %d tries: %s", what, task.request.retries + 1, exc)
        return 0
    logger.warning("%s failed, retrying: %s", what, exc)
    raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from None


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=EMAIL_MAX_RETRIES)
def email_created(self, approval_ids: list[str]) -> int:  # type: ignore[no-untyped-def]
    """Email reviewers about new approvals still pending. Transient SMTP failures retry with backoff."""
    from approvals.notifications import EmailError, email_created, parse_ids

    try:
        return email_created(parse_ids(approval_ids))
    except EmailError as exc:
        return _retry_or_give_up(self, f"email about new approvals {approval_ids}", exc, permanent=exc.permanent)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=EMAIL_MAX_RETRIES)
def email_escalated(self, approval_ids: list[str]) -> int:  # type: ignore[no-untyped-def]
    """Email the escalation group about expired approvals not yet escalated, and mark them
    escalated once it is sent. Transient SMTP failures retry with backoff."""
    from approvals.notifications import EmailError, email_escalated, parse_ids

    try:
        return email_escalated(parse_ids(approval_ids))
    except EmailError as exc:
        return _retry_or_give_up(self, f"escalation email about approvals {approval_ids}", exc,
                                 permanent=exc.permanent)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=WEBHOOK_MAX_RETRIES)
def deliver_webhook(self, event: str, body: str) -> int:  # type: ignore[no-untyped-def]
    """POST one signed webhook. Transient failures retry with backoff; permanent ones are logged."""
    from approvals.notifications import WebhookError, webhook_post

    try:
        return webhook_post(event, body)
    except WebhookError as exc:
        return _retry_or_give_up(self, f"webhook {event}", exc, permanent=exc.permanent)
