"""Announcements on the channel layer. Sync code announces only through here.

Messages carry ids and small facts, never HTML: the consumer re-reads through a
selector and renders the fragment itself.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction

from orchestrator import announce

logger = logging.getLogger(__name__)


def execution_group(execution_id: Any) -> str:
    return f"execution.{execution_id}"


EXECUTIONS_GROUP = "executions.list"


def _send(group: str, message: dict[str, Any]) -> None:
    # Without waiting, on one long-lived loop (orchestrator/announce.py); a dropped
    # announcement never fails a step: pages re-read the database.
    announce.group_send(group, message)


def announce_step(execution_id: Any, step_id: int) -> None:
    _send(execution_group(execution_id), {"type": "trace.step", "execution_id": str(execution_id), "step_id": step_id})
    # The list shows steps, tokens and the running status (the runner announces only outcomes).
    _send(EXECUTIONS_GROUP, {"type": "trace.progress", "execution_id": str(execution_id)})


# Statuses that end a run: its spans are complete and go to an OpenTelemetry collector, if one is set.
RUN_ENDS = {"succeeded", "failed", "cancelled", "budget_exceeded", "interrupted"}


def announce_execution(execution_id: Any, status: str) -> None:
    message = {"type": "trace.execution", "execution_id": str(execution_id), "status": status}
    _send(execution_group(execution_id), message)
    _send(EXECUTIONS_GROUP, message)
    if status in RUN_ENDS and getattr(settings, "OTEL_EXPORTER_OTLP_ENDPOINT", ""):
        # A worker sends them (and retries while the collector is down): a user's
        # cancel must not wait on a collector inside the web request.
        transaction.on_commit(partial(_queue_export, str(execution_id)))


def _queue_export(execution_id: str) -> None:
    from traces.tasks import export_spans

    try:
        export_spans.delay(execution_id)
    except Exception:  # noqa: BLE001 - a broker that is down must never fail a run; the next run end sends them
        logger.warning("could not queue the OpenTelemetry export of %s", execution_id, exc_info=True)
