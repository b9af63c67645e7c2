"""Repair of a stuck execution: why it is stuck, and the four ways out, each audited.

- :func:`execution_diagnose` — the lease holder and when it lapses, the last
  heartbeat (the lease is extended every third of its length, so an expiry far
  in the future means a live worker), the last step and checkpoint, the pending
  approvals, and a sentence saying what to do.
- :func:`execution_release_lease` — a running execution whose worker is gone:
  queued again at once. If the worker was alive after all, it finds the lease
  taken at its next step boundary and stops, and its checkpoint writes are
  fenced by the lease token.
- :func:`execution_requeue` — a queued execution whose broker message was lost:
  send the advance again (the lease turns a duplicate away).
- :func:`execution_fail` — give up on it: ``failed`` with the reason; what waits
  for people is cancelled.
- :func:`execution_cancel_stuck` — cancel it through the core's ``execution_cancel``.

Admins only, checked here so the command line, the admin site and any later API
share the rule; ``user=None`` is an operator at the command line (``--as`` names
the person to audit).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from orchestrator import roles, services
from orchestrator.errors import InvalidState, PermissionDenied
from orchestrator.models import Execution

Status = Execution.Status
AUDIT_KIND = "repair"


@dataclass
class Diagnosis:
    execution_id: UUID
    graph: str
    status: str
    why: str
    lease_owner: str = ""
    lease_expires_at: datetime.datetime | None = None
    last_heartbeat_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
    cancel_requested: bool = False
    last_step: dict[str, Any] | None = None
    last_checkpoint: dict[str, Any] | None = None
    pending_approvals: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key, item in out.items():
            if isinstance(item, datetime.datetime):
                out[key] = item.isoformat()
        out["execution_id"] = str(self.execution_id)
        return out


def _check_admin(user: User | None) -> None:
    if user is not None and not roles.is_admin(user):
        raise PermissionDenied("Only admins may repair executions.")


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why: the reason is kept on the execution and in the audit log."})
    if len(reason) > 500:
        raise ValidationError({"reason": "The reason must be at most 500 characters."})
    return reason


def _audit(*, user: User | None, execution: Execution, outcome: str, reason: str, detail: dict[str, Any]) -> None:
    from orchestrator.audit import audit_record

    audit_record(kind=AUDIT_KIND, actor=user, execution_id=execution.id, graph_name=execution.graph_name,
                 action=outcome, outcome=outcome, detail=detail, comment=reason)


def _queue(execution_id: UUID) -> None:
    from orchestrator.tasks import advance

    advance.delay(str(execution_id))


def execution_diagnose(*, execution_id: UUID) -> Diagnosis:
    """What an admin needs to see why an execution is stuck. Raises ``Execution.DoesNotExist``."""
    from approvals.models import Approval
    from orchestrator.models.checkpoints import Checkpoint as CheckpointRow
    from traces.models import Step

    execution = Execution.objects.get(id=execution_id)
    now = timezone.now()
    lease = datetime.timedelta(seconds=settings.LOOPGATE_LEASE_SECONDS)
    diagnosis = Diagnosis(
        execution_id=execution.id, graph=execution.graph_name, status=execution.status, why="",
        lease_owner=execution.lease_owner, lease_expires_at=execution.lease_expires_at,
        updated_at=execution.updated_at, cancel_requested=execution.cancel_requested,
        # Each heartbeat sets the expiry one lease ahead: the last one was a lease before it.
        last_heartbeat_at=execution.lease_expires_at - lease if execution.lease_expires_at else None,
    )
    step = Step.objects.filter(execution=execution).order_by("-id").first()
    if step is not None:
        diagnosis.last_step = {"step": step.step, "nodes": step.nodes, "finished_at": step.finished_at.isoformat(),
                               "checkpoint_id": step.checkpoint_id}
    checkpoint = (CheckpointRow.objects.filter(thread_id=str(execution.id), checkpoint_ns="")
                  .order_by("-checkpoint_id").first())
    if checkpoint is not None:
        diagnosis.last_checkpoint = {"checkpoint_id": checkpoint.checkpoint_id,
                                     "step": (checkpoint.metadata or {}).get("step"),
                                     "created_at": checkpoint.created_at.isoformat()}
    diagnosis.pending_approvals = [
        {"id": str(a.id), "node": a.node, "created_at": a.created_at.isoformat(),
         "deadline": a.deadline.isoformat() if a.deadline else None}
        for a in Approval.objects.filter(execution=execution, status=Approval.Status.PENDING).order_by("created_at")
    ]
    age = (now - execution.updated_at).total_seconds()
    if execution.is_finished:
        diagnosis.why = f"Not stuck: it ended ({execution.get_status_display()})."
    elif execution.status == Status.RUNNING and (execution.lease_expires_at is None or execution.lease_expires_at < now):
        lapsed = (now - execution.lease_expires_at).total_seconds() if execution.lease_expires_at else 0
        diagnosis.why = (f"Running, but the lease of {execution.lease_owner or 'nobody'} lapsed {lapsed:.0f} s ago: "
                         "its worker is gone. The reconciler re-queues it on its next round (is Celery beat running?); "
                         "release the lease to hand it over now.")
        diagnosis.actions = ["release", "fail", "cancel"]
    elif execution.status == Status.RUNNING:
        diagnosis.why = (f"Running on {execution.lease_owner}, heartbeat current (lease until "
                         f"{execution.lease_expires_at:%H:%M:%S}). A step may be slow; if that worker is known dead, "
                         "release the lease.")
        diagnosis.actions = ["release", "fail", "cancel"]
    elif execution.status == Status.QUEUED:
        diagnosis.why = (f"Queued for {age:.0f} s and no worker took it: is a worker consuming the queue "
                         f"'{settings.CELERY_TASK_DEFAULT_QUEUE}'? Re-queue it to send the message again.")
        diagnosis.actions = ["requeue", "fail", "cancel"]
    elif execution.status == Status.INTERRUPTED:
        n = len(diagnosis.pending_approvals)
        diagnosis.why = (f"Waiting for people: {n} pending approval(s)." if n else
                         "Interrupted with no pending approval: every decision is in, so re-queue it to resume.")
        diagnosis.actions = (["fail", "cancel"] if n else ["requeue", "fail", "cancel"])
    return diagnosis


def execution_release_lease(*, execution_id: UUID, user: User | None, reason: str) -> Execution:
    """Take the lease from a running execution's worker and queue it again, at once
    (``services.execution_release`` in that worker's name)."""
    _check_admin(user)
    reason = _reason(reason)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(id=execution_id)
        if execution.status != Status.RUNNING:
            raise InvalidState(f"Only a running execution holds a lease; this one is {execution.get_status_display()}.")
        before = {"lease_owner": execution.lease_owner,
                  "lease_expires_at": execution.lease_expires_at.isoformat() if execution.lease_expires_at else None}
        if not services.execution_release(execution_id=execution.id, worker=execution.lease_owner):
            raise InvalidState("Its lease changed hands meanwhile; look again.")
        _audit(user=user, execution=execution, outcome="lease released", reason=reason, detail=before)
    execution.refresh_from_db()
    return execution


def execution_requeue(*, execution_id: UUID, user: User | None, reason: str) -> Execution:
    """Send the advance again for a queued execution (its message was lost), or resume an
    interrupted one whose approvals are all decided (``services.execution_resume``)."""
    from approvals.models import Approval

    _check_admin(user)
    reason = _reason(reason)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(id=execution_id)
        if execution.status == Status.INTERRUPTED:
            if Approval.objects.filter(execution=execution, status=Approval.Status.PENDING).exists():
                raise InvalidState("It waits for pending approvals: decide them (or cancel it).")
            services.execution_resume(execution_id=execution.id)
        elif execution.status == Status.QUEUED:
            # No change of status: the message again (the lease turns a duplicate away).
            Execution.objects.filter(id=execution.id).update(updated_at=timezone.now())
            transaction.on_commit(partial(_queue, execution.id))
        else:
            raise InvalidState(f"Only a queued execution can be re-queued; this one is "
                               f"{execution.get_status_display()}" +
                               (" (release its lease instead)." if execution.status == Status.RUNNING else "."))
        _audit(user=user, execution=execution, outcome="re-queued", reason=reason, detail={"was": execution.status})
    execution.refresh_from_db()
    return execution


def execution_fail(*, execution_id: UUID, user: User | None, reason: str) -> Execution:
    """Mark an unfinished execution failed with the reason (``services.execution_mark_failed``)."""
    _check_admin(user)
    reason = _reason(reason)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(id=execution_id)
        if execution.is_finished:
            raise InvalidState(f"This execution already ended ({execution.get_status_display()}).")
        was = {"status": execution.status, "lease_owner": execution.lease_owner}
        execution = services.execution_mark_failed(
            execution_id=execution.id, reason=reason, by=user.get_username() if user is not None else "an operator")
        _audit(user=user, execution=execution, outcome="marked failed", reason=reason, detail=was)
    return execution


def execution_cancel_stuck(*, execution_id: UUID, user: User | None, reason: str) -> Execution:
    """Cancel through the core (a running one stops at its next step boundary), audited as a repair."""
    _check_admin(user)
    reason = _reason(reason)
    with transaction.atomic():
        execution = services.execution_cancel(execution_id=execution_id, user=user, reason=reason)
        _audit(user=user, execution=execution, outcome="cancelled", reason=reason, detail={})
    return execution


def executions_stuck(*, older_than_seconds: int | None = None) -> list[Execution]:
    """Executions that look stuck: running on a lapsed lease, or queued and untouched for a while."""
    from django.db.models import Q

    now = timezone.now()
    grace = datetime.timedelta(seconds=older_than_seconds if older_than_seconds is not None
                               else 4 * settings.LOOPGATE_RECONCILE_SECONDS)
    return list(Execution.objects.filter(
        Q(status=Status.RUNNING, lease_expires_at__lt=now) | Q(status=Status.RUNNING, lease_expires_at__isnull=True)
        | Q(status=Status.QUEUED, updated_at__lt=now - grace)
    ).order_by("updated_at")[:200])
