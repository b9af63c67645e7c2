from __future__ import annotations

from celery import shared_task

WEBHOOK_MAX_RETRIES = 8


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=WEBHOOK_MAX_RETRIES)
def deliver_run_webhook(self, url: str, body: str) -> int:  # type: ignore[no-untyped-def]
    """POST a run's webhook (the body made once, so every retry signs the same bytes). Transient
    failures retry with the approvals' backoff; permanent ones, or a host no longer allowed, are logged."""
    import logging

    from django.core.exceptions import ValidationError

    from agent_api.webhooks import post
    from approvals.notifications import WebhookError
    from approvals.tasks import backoff

    logger = logging.getLogger(__name__)
    try:
        return post(url, body)
    except ValidationError as exc:
        logger.error("run webhook to %s not sent: %s", url, exc)
        return 0
    except WebhookError as exc:
        if exc.permanent or self.request.retries >= self.max_retries:
            logger.error("run webhook to %s not sent: %s", url, exc)
            return 0
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None
