"""Periodic operations tasks (scheduled in orchestrator/celery.py, the one place for schedules)."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def apply_retention() -> int:
    from ops.retention import retention_apply

    result = retention_apply()
    return result.executions + result.checkpoints
