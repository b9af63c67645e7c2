"""Every write to executions goes through here, each inside its own transaction."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from orchestrator import budgets, roles
from orchestrator.errors import InvalidState, PermissionDenied
from orchestrator.models import Execution

MAX_RECURSION_LIMIT = 10_000


def _queue_advance(execution_id: str) -> None:
    from orchestrator.tasks import advance as advance_task

    advance_task.delay(execution_id)


def execution_start(
    *,
    graph_name: str,
    input: Any,
    user: User | None,
    token_budget: int | None = None,
    recursion_limit: int | None = None,
) -> Execution:
    """Create a queued execution of a registered graph and queue it for a worker after commit.

    Raises ``GraphNotFound`` for an unknown graph, ``GraphBroken`` for one that
    failed to load, ``PermissionDenied`` for a user who may not start executions,
    ``DailyTokenLimitReached`` when the graph's daily token limit is used up,
    and ``ValidationError`` (naming the field) for bad input.
    """
    from orchestrator import registry

    if user is not None and not roles.can_operate(user):
        raise PermissionDenied("Only operators and admins may start executions.")
    entry = registry.get_graph(graph_name)  # raises GraphNotFound / GraphBroken
    if not isinstance(input, dict):
        raise ValidationError({"input": "The input must be a JSON object."})
    entry.validate_input(input)  # raises ValidationError naming the field
    if recursion_limit is None:
        recursion_limit = entry.recursion_limit or settings.LOOPGATE_DEFAULT_RECURSION_LIMIT
    if not isinstance(recursion_limit, int) or not 1 <= recursion_limit <= MAX_RECURSION_LIMIT:
        raise ValidationError({"recursion_limit": f"The step limit must be between 1 and {MAX_RECURSION_LIMIT}."})
    with transaction.atomic():
        # The given budget (never above the graph's unless an admin starts it), else the graph's,
        # else the default; raises DailyTokenLimitReached once the graph's daily limit is used.
        token_budget = budgets.budget_for_start(graph_name=entry.name, requested=token_budget, user=user)
        execution = Execution.objects.create(
            graph_name=entry.name,
            graph_version=entry.version,
            input=input,
            created_by=user,
            token_budget=token_budget,
            recursion_limit=recursion_limit,
        )
        transaction.on_commit(partial(_queue_advance, str(execution.id)))
    return execution


def execution_cancel(*, execution_id: Any, user: User | None, reason: str = "") -> Execution:
    """Cancel an execution. Queued or waiting ones stop at once; a running one
    stops at its next step boundary (the runner sees ``cancel_requested``).
    ``reason`` is shown on the execution when it stops at once."""
    if user is not None and not roles.can_operate(user):
        raise PermissionDenied("Only operators and admins may cancel executions.")
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(id=execution_id)
        if execution.is_finished:
            raise InvalidState(f"This execution already ended ({execution.get_status_display()}).")
        if execution.status == Execution.Status.RUNNING:
            execution.cancel_requested = True
            execution.save(update_fields=["cancel_requested", "updated_at"])
        else:
            execution.status = Execution.Status.CANCELLED
            execution.cancel_requested = True
            execution.finished_at = timezone.now()
            execution.lease_owner = ""
            execution.lease_expires_at = None
            fields = ["status", "cancel_requested", "finished_at", "lease_owner", "lease_expires_at", "updated_at"]
            if reason:
                execution.error = {"reason": reason}
                fields.append("error")
            execution.save(update_fields=fields)
            _cancel_pending_approvals(execution)
            transaction.on_commit(partial(_announce_status, execution.id, execution.status))
    return execution


def _cancel_pending_approvals(execution: Execution) -> None:
    from approvals import live as approvals_live
    from approvals import services as approvals

    if approvals.approvals_cancel_for_execution(execution_id=execution.id):
        transaction.on_commit(approvals_live.announce_approvals_changed)


def _announce_status(execution_id: Any, status: str) -> None:
    from traces import live

    live.announce_execution(execution_id, status)
