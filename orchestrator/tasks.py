"""Celery tasks. Arguments are ids as strings; each task re-reads the database,
so running one twice is harmless."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance(execution_id: str) -> None:
    from orchestrator.runner import execution_advance  # imported inside: no import cycles

    execution_advance(execution_id=UUID(execution_id))


@shared_task(ignore_result=True)
def reconcile() -> int:
    from orchestrator.runner import executions_reconcile

    return executions_reconcile()


@shared_task(ignore_result=True)
def sweep_store() -> int:
    """Delete the Store's expired items (reads already ignore them; this frees the rows)."""
    from orchestrator.store import get_store

    return get_store().sweep_ttl()
