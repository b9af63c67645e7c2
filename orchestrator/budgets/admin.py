"""Budget writes: what admins set (the default, a graph's budget and daily limit), and the raise
that resumes an execution stopped over budget. Every change writes a ``BudgetChange`` row and an
audit line in the same transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from orchestrator import registry, roles, services
from orchestrator.audit import audit_record
from orchestrator.budgets.policy import MAX_TOKEN_BUDGET
from orchestrator.errors import InvalidState, PermissionDenied
from orchestrator.models import AuditEntry, BudgetChange, BudgetDefault, Execution, GraphBudget


# -- writes ------------------------------------------------------------------------------------------


def _require_admin(user: User | None) -> None:
    if user is None or not roles.is_admin(user):
        raise PermissionDenied("Only admins may change budgets.")


def _check_amount(value: int | None, *, field: str, optional: bool, minimum: int = 0) -> None:
    if value is None:
        if not optional:
            raise ValidationError({field: "Give a number of tokens."})
        return
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_TOKEN_BUDGET:
        raise ValidationError({field: f"Give a whole number of tokens from {minimum} to {MAX_TOKEN_BUDGET:,}."})


def _amount(value: int | None, field: str) -> str:
    if value is None:
        return "no limit" if field == BudgetChange.Field.DAILY_TOKEN_LIMIT else "the default"
    return f"{value:,}"


def _log_change(
    *, user: User | None, scope: str, field: str, old: int | None, new: int | None, graph_name: str = "",
    execution: Execution | None = None, detail: dict[str, Any] | None = None,
) -> BudgetChange:
    """The Budgets page's change log line, and the same change on the Audit page; call inside the change's
    transaction."""
    change = BudgetChange.objects.create(
        user=user, username=user.get_username() if user is not None else "", scope=scope, field=field,
        old_value=old, new_value=new, graph_name=graph_name, execution=execution, detail=detail or {},
    )
    what = {BudgetChange.Scope.DEFAULT: "default budget per execution",
            BudgetChange.Scope.EXECUTION: "budget raised, resumed"}.get(scope) or change.get_field_display()
    audit_record(kind=AuditEntry.Kind.BUDGET, actor=user, execution_id=execution.id if execution else None,
                 graph_name=graph_name, action=what, outcome="changed",
                 detail={"scope": scope, "field": field, "old": old, "new": new},
                 comment=f"{_amount(old, field)} → {_amount(new, field)}")
    return change


def budget_set_default(*, user: User | None, token_budget: int) -> BudgetDefault:
    """Set the default budget per execution (admins only); logs old → new. Applies to new executions."""
    _require_admin(user)
    _check_amount(token_budget, field="token_budget", optional=False)
    with transaction.atomic():
        # Create the row once (from the setting, which applied until now), then lock it:
        # two admins saving at once are serialised and each logs its own old -> new.
        BudgetDefault.objects.get_or_create(
            id=BudgetDefault.SINGLETON_ID, defaults={"token_budget": settings.LOOPGATE_DEFAULT_TOKEN_BUDGET}
        )
        row = BudgetDefault.objects.select_for_update().get(id=BudgetDefault.SINGLETON_ID)
        if row.token_budget != token_budget:
            _log_change(user=user, scope=BudgetChange.Scope.DEFAULT, field=BudgetChange.Field.TOKEN_BUDGET,
                        old=row.token_budget, new=token_budget)
        row.token_budget = token_budget
        row.updated_by = user
        row.save(update_fields=["token_budget", "updated_by", "updated_at"])
    return row


def graph_budget_set(
    *, user: User | None, graph_name: str, token_budget: int | None, daily_token_limit: int | None
) -> GraphBudget:
    """Set a graph's budget per execution (None: the default) and daily limit (None: none).

    Admins only; one log line per changed field, in the same transaction. The
    graph must be registered (broken entries included: their budget can be set
    before they are fixed).
    """
    _require_admin(user)
    if graph_name not in {entry.name for entry in registry.all_entries()}:
        raise ValidationError({"graph_name": f"There is no graph named {graph_name!r}."})
    _check_amount(token_budget, field="token_budget", optional=True)
    _check_amount(daily_token_limit, field="daily_token_limit", optional=True)
    with transaction.atomic():
        GraphBudget.objects.get_or_create(graph_name=graph_name)
        row = GraphBudget.objects.select_for_update().get(graph_name=graph_name)
        for field, new in (("token_budget", token_budget), ("daily_token_limit", daily_token_limit)):
            old = getattr(row, field)
            if old != new:
                _log_change(user=user, scope=BudgetChange.Scope.GRAPH, field=field, old=old, new=new,
                            graph_name=graph_name)
                setattr(row, field, new)
        row.updated_by = user
        row.save(update_fields=["token_budget", "daily_token_limit", "updated_by", "updated_at"])
    return row


def execution_budget_raise(*, execution_id: UUID, user: User | None, token_budget: int) -> Execution:
    """Raise the budget of an execution stopped over budget, and resume it.

    Preconditions: ``user`` is an admin; the execution is ``budget_exceeded``;
    the new budget is more than the tokens it has used.
    Effects, in one transaction: 1. the budget is set and the status goes back
    to ``queued`` (a conditional update: two admins clicking at once resume it
    once, the loser gets ``InvalidState``); 2. a log line keeps old → new and
    the error that stopped it; 3. after commit the runner is queued, and it
    continues from the last checkpoint.
    """
    if user is None or not roles.is_admin(user):
        raise PermissionDenied("Only admins may raise an execution's budget.")
    _check_amount(token_budget, field="token_budget", optional=False, minimum=1)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(id=execution_id)
        if execution.status != Execution.Status.BUDGET_EXCEEDED:
            raise InvalidState(
                f"Only an execution stopped over budget can have its budget raised; this one is "
                f"{execution.get_status_display()}.",
                extra={"status": execution.status},
            )
        if token_budget <= execution.tokens_used:
            raise ValidationError(
                {"token_budget": f"The new budget must be more than the {execution.tokens_used:,} tokens "
                                 "already used, or the execution would stop again at once."}
            )
        old = execution.token_budget
        if not services.execution_budget_resume(execution_id=execution.id, token_budget=token_budget):
            raise InvalidState("Someone else resumed this execution first.")  # unreachable under the row lock
        _log_change(user=user, scope=BudgetChange.Scope.EXECUTION, field=BudgetChange.Field.TOKEN_BUDGET,
                    old=old, new=token_budget, graph_name=execution.graph_name, execution=execution,
                    detail={"tokens_used": execution.tokens_used, "resumed": True, "stopped_by": execution.error})
        execution.refresh_from_db()  # as this transaction left it (a worker may claim it once it commits)
    return execution


