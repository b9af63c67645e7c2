"""Celery tasks of the approvals app. Arguments are ids as strings (or the exact
webhook body, so every retry signs the same bytes); each task re-reads the
database, so running one twice is harmless. Scheduled in orchestrator/celery.py."""

from __future__ import annotations

import logging
import random

from celery import shared_task

logger = logging.getLogger(__name__)

WEBHOOK_MAX_RETRIES = 8
WEBHOOK_BACKOFF_MAX_SECONDS = 600


@shared_task(ignore_result=True)
def expire_overdue() -> int:
    from approvals.services import approvals_expire_overdue

    return approvals_expire_overdue()


@shared_task(ignore_result=True)
def notify_created(approval_ids: list[str]) -> int:
    from approvals import notifications

    return notifications.notify_created(notifications.parse_ids(approval_ids))


def webhook_backoff(retries: int) -> float:
    """5 s, 10 s, 20 s … up to ten minutes, with a little jitter so retries spread out."""
    base = min(WEBHOOK_BACKOFF_MAX_SECONDS, 5 * 2**retries)
    return base * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not security


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=WEBHOOK_MAX_RETRIES)
def deliver_webhook(self, event: str, body: str) -> int:  # type: ignore[no-untyped-def]
    """POST one signed webhook. Transient failures retry with backoff; permanent ones are logged."""
    from approvals.notifications import WebhookError, webhook_post

    try:
        return webhook_post(event, body)
    except WebhookError as exc:
        if exc.permanent:
            logger.error("webhook %s not delivered (permanent): %s", event, exc)
            return 0
        if self.request.retries >= self.max_retries:
            logger.error("webhook %s not delivered after %d tries: %s", event, self.request.retries + 1, exc)
            return 0
        logger.warning("webhook %s failed, retrying: %s", event, exc)
        raise self.retry(exc=exc, countdown=webhook_backoff(self.request.retries)) from None
