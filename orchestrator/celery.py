"""The Celery app. Periodic tasks are scheduled here, and only here."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_shutting_down

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

app = Celery("loopgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_periodic_tasks(sender: Celery, **kwargs: Any) -> None:
    from django.conf import settings

    # The reconciler re-queues executions whose message was lost (a flushed
    # broker) or whose worker died (an expired lease): the database is the truth.
    sender.add_periodic_task(
        float(settings.LOOPGATE_RECONCILE_SECONDS), sender.signature("orchestrator.tasks.reconcile"),
        name="reconcile executions",
    )
    # Overdue approvals expire: the graph is answered with a timeout and the
    # escalation group is told (approvals/services.py approvals_expire_overdue).
    sender.add_periodic_task(
        float(settings.LOOPGATE_APPROVAL_EXPIRY_SECONDS), sender.signature("approvals.tasks.expire_overdue"),
        name="expire overdue approvals",
    )
    # Items of the Store whose TTL ran out are deleted (reads ignore them already).
    sender.add_periodic_task(
        float(settings.LOOPGATE_STORE_SWEEP_SECONDS), sender.signature("orchestrator.tasks.sweep_store"),
        name="sweep expired store items",
    )
    # Retention (ops/retention.py): only when a policy is set; otherwise everything is kept.
    if settings.LOOPGATE_RETENTION_DAYS or settings.LOOPGATE_RETENTION_KEEP_CHECKPOINTS:
        sender.add_periodic_task(
            float(settings.LOOPGATE_RETENTION_SECONDS), sender.signature("ops.tasks.apply_retention"),
            name="apply retention",
        )


@worker_shutting_down.connect
def hand_back_on_shutdown(**kwargs: Any) -> None:
    """SIGTERM: running executions go back to the queue at their next step boundary."""
    from orchestrator import shutdown

    shutdown.begin_draining()
