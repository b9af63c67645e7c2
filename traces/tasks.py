"""Celery tasks of traces. Arguments are ids as strings; each task re-reads the
database, so running one twice is harmless."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from celery import shared_task

from traces import otel

EXPORT_RETRIES = 10
EXPORT_BACKOFF = 2  # seconds before the first retry, doubled each time
EXPORT_BACKOFF_MAX = 600


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=EXPORT_RETRIES)
def export_spans(self: Any, execution_id: str) -> int:
    """Send an execution's spans not sent yet to the OpenTelemetry collector.

    A collector that is down or refuses is transient: retry with backoff. Spans
    still unsent after the last retry go with the execution's next export.
    """
    try:
        return otel.execution_export(execution_id=UUID(execution_id))
    except otel.ExportFailed as exc:
        countdown = min(EXPORT_BACKOFF_MAX, EXPORT_BACKOFF * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from exc
