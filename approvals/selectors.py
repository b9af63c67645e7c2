"""Reads of the approvals app, with their permission checks: views, the consumer,
tasks and the API share them.

Every role (admins, reviewers, operators) may read approvals; users without a
role see none. Deciding needs ``roles.can_decide`` and, for four-eyes graphs,
someone other than the user who started the execution.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import Http404
from django.utils import timezone

from approvals.models import Approval
from approvals.services import four_eyes_blocks
from orchestrator import roles
from orchestrator.models import AuditEntry, Execution
from traces.models import Step

# Inbox age filter: the value in the URL → (label, waited at least, waited at most).
AGES: dict[str, tuple[str, datetime.timedelta | None, datetime.timedelta | None]] = {
    "new": ("Last hour", None, datetime.timedelta(hours=1)),
    "1h": ("Waiting over an hour", datetime.timedelta(hours=1), None),
    "1d": ("Waiting over a day", datetime.timedelta(days=1), None),
}
LAST_MESSAGES = 6
LAST_STEPS = 6


def approvals_visible_to(*, user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and roles.user_roles(user))


def approval_list_for_user(*, user: Any) -> QuerySet[Approval]:
    if not approvals_visible_to(user=user):
        return Approval.objects.none()
    return Approval.objects.select_related("execution", "claimed_by", "decided_by")


def approval_list_pending(
    *, user: Any, graph: str = "", age: str = "", mine: bool = False
) -> QuerySet[Approval]:
    """Pending approvals of executions still waiting, newest first, filtered."""
    qs = approval_list_for_user(user=user).filter(status=Approval.Status.PENDING).exclude(
        execution__status__in=Execution.FINISHED
    )
    if graph:
        qs = qs.filter(execution__graph_name=graph)
    if age in AGES:
        _label, at_least, at_most = AGES[age]
        now = timezone.now()
        if at_least is not None:
            qs = qs.filter(created_at__lte=now - at_least)
        if at_most is not None:
            qs = qs.filter(created_at__gt=now - at_most)
    if mine:
        qs = qs.filter(claimed_by=user)
    return qs.order_by("-created_at")


def approval_pending_ids(*, user: Any) -> list[UUID]:
    return list(approval_list_pending(user=user).values_list("id", flat=True))


def approval_pending_count(*, user: Any) -> int:
    return approval_list_pending(user=user).count()


def approval_history(*, user: Any, limit: int = 15) -> list[Approval]:
    """The most recently decided or expired approvals, then cancelled ones (which have no
    ``decided_at``: nulls last, or Postgres would list them first and push the others out)."""
    qs = approval_list_for_user(user=user).exclude(status=Approval.Status.PENDING)
    return list(qs.order_by(F("decided_at").desc(nulls_last=True), "-updated_at")[:limit])


def approval_graph_names(*, user: Any) -> list[str]:
    if not approvals_visible_to(user=user):
        return []
    return sorted(set(Execution.objects.filter(approvals__isnull=False).values_list("graph_name", flat=True)))


def approval_get_for_user(*, user: Any, approval_id: UUID, write: bool = False) -> Approval:
    """The approval, or 404 for users without a role. ``write=True``: 403 unless
    the user may decide (reviewers, admins), checked before anything else."""
    if write and not roles.can_decide(user):
        raise PermissionDenied("Only reviewers and admins may decide approvals.")
    try:
        return approval_list_for_user(user=user).select_related("execution__created_by").get(id=approval_id)
    except Approval.DoesNotExist:
        raise Http404("No such approval.") from None


def approval_next_pending(*, user: Any, after: Approval | None = None) -> Approval | None:
    """The next approval to look at: the oldest other pending one (first come, first served)."""
    qs = approval_list_pending(user=user)
    if after is not None:
        qs = qs.exclude(id=after.id)
    return qs.order_by("created_at").first()


@dataclass
class DecideRight:
    allowed: bool
    reason: str = ""


def approval_decide_right(*, user: Any, approval: Approval) -> DecideRight:
    """Whether ``user`` may decide this approval now, and if not, why (for the page)."""
    if not roles.can_decide(user):
        return DecideRight(False, "You can read approvals; deciding them needs the reviewer or admin role.")
    if four_eyes_blocks(user=user, execution=approval.execution):
        return DecideRight(False, "Four eyes: you started this execution, so another reviewer decides its approvals.")
    if approval.execution.is_finished:
        return DecideRight(False, "The execution already ended; this approval no longer applies.")
    return DecideRight(True)


def approval_context(*, approval: Approval) -> dict[str, Any]:
    """What a reviewer needs to judge: the execution, the last messages, the step
    that led here with its state diff, the last steps and the current state."""
    execution = approval.execution
    state = execution.state if isinstance(execution.state, dict) else {}
    messages = state.get("messages") if isinstance(state.get("messages"), list) else []
    steps = list(Step.objects.filter(execution=execution).order_by("-step", "-id")[:LAST_STEPS])
    led_here = None
    if approval.checkpoint_id:
        led_here = Step.objects.filter(execution=execution, checkpoint_id=approval.checkpoint_id).first()
    if led_here is None and steps:
        led_here = steps[0]
    return {
        "execution": execution,
        "conversation": messages[-LAST_MESSAGES:],
        "messages_hidden": max(0, len(messages) - LAST_MESSAGES),
        "led_here": led_here,
        "steps": steps,
        "state": state,
        "pending_siblings": list(
            Approval.objects.filter(execution=execution, status=Approval.Status.PENDING).exclude(id=approval.id)
        ),
    }


def audit_list(
    *,
    user: Any,
    actor: str = "",
    graph: str = "",
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> QuerySet[AuditEntry]:
    """The approvals' audit log, newest first; every role may read it, users without one see nothing."""
    if not approvals_visible_to(user=user):
        return AuditEntry.objects.none()
    qs = AuditEntry.objects.all()
    if not roles.is_admin(user):  # who tried to log in from where is for admins
        qs = qs.exclude(kind=AuditEntry.Kind.LOCKOUT)
    if actor:
        qs = qs.filter(actor_name=actor)
    if graph:
        qs = qs.filter(graph_name=graph)
    if date_from:
        qs = qs.filter(created_at__date__gte=date_from)
    if date_to:
        qs = qs.filter(created_at__date__lte=date_to)
    return qs.order_by("-created_at", "-id")


@dataclass
class AuditRow:
    """One line of the audit page or its CSV."""

    created_at: datetime.datetime
    who: str
    kind: str
    outcome: str
    action: str
    graph_name: str
    execution_id: Any
    approval_id: Any
    comment: str
    detail: dict[str, Any]
    key: str

    @classmethod
    def of_entry(cls, entry: AuditEntry) -> AuditRow:
        return cls(entry.created_at, entry.who, entry.kind, entry.outcome, entry.action, entry.graph_name,
                   entry.execution_id, entry.approval_id, entry.comment, entry.detail, f"audit-{entry.id}")

    def as_row(self) -> dict[str, Any]:
        return {"when": self.created_at.isoformat(), "who": self.who, "kind": self.kind, "outcome": self.outcome,
                "action": self.action, "graph": self.graph_name, "execution": str(self.execution_id or ""),
                "approval": str(self.approval_id or ""), "comment": self.comment,
                "detail": json.dumps(self.detail, ensure_ascii=False, sort_keys=True)}


def audit_rows(*, user: Any, limit: int | None = None, **filters: Any) -> Iterator[AuditRow]:
    """Decisions, claims, expiries and budget changes, newest first (``limit`` of them, or all, streamed)."""
    entries = audit_list(user=user, **filters)
    if limit is not None:
        entries = entries[:limit]
    return (AuditRow.of_entry(entry) for entry in entries.iterator())


def audit_count(*, user: Any, **filters: Any) -> int:
    return audit_list(user=user, **filters).count()


def audit_actor_names(*, user: Any) -> list[str]:
    if not approvals_visible_to(user=user):
        return []
    return sorted(set(AuditEntry.objects.exclude(actor_name="").values_list("actor_name", flat=True)))


def audit_graph_names(*, user: Any) -> list[str]:
    if not approvals_visible_to(user=user):
        return []
    return sorted(set(AuditEntry.objects.exclude(graph_name="").values_list("graph_name", flat=True)))


def user_for_display(user: User | None, viewer: Any) -> str:
    if user is None:
        return "Loopgate"
    return "you" if getattr(viewer, "id", None) == user.id else user.get_username()
