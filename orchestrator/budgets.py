"""Token budgets: what admins set, what an execution starts with, and the
callback that enforces it on every LLM call.

Where a budget comes from, in order: the one given when the execution starts
(never above the graph's, unless an admin starts it), the graph's budget, the
default budget (set on the Budgets page, else ``LOOPGATE_DEFAULT_TOKEN_BUDGET``).
The execution keeps the budget it started with; later changes apply to new
executions only. A graph's optional daily token limit refuses new executions
once its executions started today have used it up.

Enforcement: before an LLM call, refuse it if the execution has already used its
budget; after a call, stop the execution if the call took it over. Either way
the run ends ``budget_exceeded`` with its state and checkpoints kept, and an
admin can raise the budget and resume it (``execution_budget_raise``).

Every change writes a ``BudgetChange`` row in the same transaction.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from orchestrator import roles
from orchestrator.errors import BudgetExceeded, InvalidState, LoopgateError, PermissionDenied
from orchestrator.models import BudgetChange, BudgetDefault, Execution, GraphBudget

MAX_TOKEN_BUDGET = 10**12  # a sanity bound for typed-in numbers, far above any real budget


class ExecutionOverBudget(BudgetExceeded):
    """Raised inside an LLM call's callback; the runner ends the execution ``budget_exceeded``."""

    execution_status = Execution.Status.BUDGET_EXCEEDED


class DailyTokenLimitReached(LoopgateError):
    """The graph's executions started today have used its daily token limit: no new ones today."""

    code = "daily_token_limit_reached"
    status = 429


# -- reads -----------------------------------------------------------------------------------------


def default_token_budget() -> int:
    """The default budget per execution: the admins' value, else the setting."""
    row = BudgetDefault.objects.filter(id=BudgetDefault.SINGLETON_ID).values_list("token_budget", flat=True).first()
    return row if row is not None else settings.LOOPGATE_DEFAULT_TOKEN_BUDGET


def today_range() -> tuple[datetime.datetime, datetime.datetime]:
    """Midnight to midnight of today in ``TIME_ZONE``: the day a daily limit counts."""
    start = timezone.make_aware(datetime.datetime.combine(timezone.localdate(), datetime.time.min))
    return start, start + datetime.timedelta(days=1)


def graph_tokens_today(graph_name: str) -> int:
    """Tokens used by the graph's executions created today."""
    start, end = today_range()
    used = Execution.objects.filter(graph_name=graph_name, created_at__gte=start, created_at__lt=end).aggregate(
        total=Sum("tokens_used")
    )["total"]
    return int(used or 0)


@dataclass(frozen=True)
class EffectiveBudget:
    token_budget: int
    source: str  # "graph", "default" or "setting"


def graph_effective_budget(graph_name: str, *, graph_budget: GraphBudget | None = None) -> EffectiveBudget:
    """The budget a new execution of the graph gets when none is given."""
    if graph_budget is None:
        graph_budget = GraphBudget.objects.filter(graph_name=graph_name).first()
    if graph_budget is not None and graph_budget.token_budget is not None:
        return EffectiveBudget(graph_budget.token_budget, "graph")
    if BudgetDefault.objects.filter(id=BudgetDefault.SINGLETON_ID).exists():
        return EffectiveBudget(default_token_budget(), "default")
    return EffectiveBudget(settings.LOOPGATE_DEFAULT_TOKEN_BUDGET, "setting")


def budget_for_start(*, graph_name: str, requested: int | None, user: User | None) -> int:
    """The budget a new execution starts with; call inside the starting transaction.

    Raises ``ValidationError`` (on ``token_budget``) for a budget above the
    graph's asked for by someone other than an admin (``user=None`` is Loopgate
    itself: commands and tests), and ``DailyTokenLimitReached`` when the graph's
    daily limit is used up.
    """
    # Locks the graph's budget row: starts of a graph queue here, so two cannot
    # both slip under its daily limit, and an admin's change lands before or after.
    graph_budget = GraphBudget.objects.select_for_update().filter(graph_name=graph_name).first()
    effective = graph_effective_budget(graph_name, graph_budget=graph_budget)
    if requested is None:
        token_budget = effective.token_budget
    else:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
            raise ValidationError({"token_budget": "The token budget must be a whole number of 0 or more."})
        if requested > effective.token_budget and user is not None and not roles.is_admin(user):
            raise ValidationError(
                {
                    "token_budget": (
                        f"At most {effective.token_budget:,} tokens: that is the budget of {graph_name}. "
                        "Only admins may start an execution with a larger one."
                    )
                }
            )
        token_budget = requested
    limit = graph_budget.daily_token_limit if graph_budget is not None else None
    if limit is not None:
        used = graph_tokens_today(graph_name)
        if used >= limit:
            raise DailyTokenLimitReached(
                f"{graph_name} has used its daily token limit: {used:,} of {limit:,} tokens today. "
                "New executions can start tomorrow, or an admin can raise the limit on the Budgets page.",
                extra={"graph": graph_name, "tokens_today": used, "daily_token_limit": limit},
            )
    return token_budget


@dataclass
class GraphBudgetRow:
    """One graph on the Budgets page: what is set, what applies, and today's usage."""

    entry: Any  # registry.GraphEntry
    budget: GraphBudget | None
    effective: EffectiveBudget
    tokens_today: int
    usage_today: Any  # accounting.Usage
    form: Any = None  # the page's edit form for the row

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def daily_token_limit(self) -> int | None:
        return self.budget.daily_token_limit if self.budget is not None else None

    @property
    def limit_reached(self) -> bool:
        return self.daily_token_limit is not None and self.tokens_today >= self.daily_token_limit


def budget_overview() -> list[GraphBudgetRow]:
    """A row per registered graph (broken ones too), in registry order, in a handful of queries."""
    from orchestrator import accounting, registry

    budgets = {b.graph_name: b for b in GraphBudget.objects.all()}
    start, end = today_range()
    tokens = dict(
        Execution.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("graph_name").annotate(total=Sum("tokens_used")).values_list("graph_name", "total")
    )
    usage = {day.graph_name: day.usage for day in accounting.graph_usage_by_day(days=1)}
    has_default = BudgetDefault.objects.filter(id=BudgetDefault.SINGLETON_ID).exists()
    default = EffectiveBudget(default_token_budget(), "default" if has_default else "setting")
    rows = []
    for entry in registry.all_entries():
        budget = budgets.get(entry.name)
        effective = (EffectiveBudget(budget.token_budget, "graph")
                     if budget is not None and budget.token_budget is not None else default)
        rows.append(GraphBudgetRow(entry, budget, effective, int(tokens.get(entry.name) or 0),
                                   usage.get(entry.name) or accounting.Usage()))
    return rows


def budget_change_list(*, limit: int = 50) -> list[BudgetChange]:
    return list(BudgetChange.objects.select_related("execution")[:limit])


# -- writes ------------------------------------------------------------------------------------------


def _require_admin(user: User | None) -> None:
    if user is None or not roles.is_admin(user):
        raise PermissionDenied("Only admins may change budgets.")


def _check_amount(value: int | None, *, field: str, optional: bool) -> None:
    if value is None:
        if not optional:
            raise ValidationError({field: "Give a number of tokens."})
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_BUDGET:
        raise ValidationError({field: f"Give a whole number of tokens from 0 to {MAX_TOKEN_BUDGET:,}."})


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
    from approvals.models import AuditEntry
    from approvals.services import audit_record

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
    from orchestrator import registry

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


def _queue_advance(execution_id: str) -> None:
    from orchestrator.tasks import advance as advance_task

    advance_task.delay(execution_id)


def _announce(execution_id: str, status: str) -> None:
    from traces import live

    live.announce_execution(execution_id, status)


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
    _check_amount(token_budget, field="token_budget", optional=False)
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
        resumed = Execution.objects.filter(id=execution.id, status=Execution.Status.BUDGET_EXCEEDED).update(
            status=Execution.Status.QUEUED, token_budget=token_budget, error=None, finished_at=None,
            updated_at=timezone.now(),
        )
        if resumed != 1:  # unreachable under the row lock; kept so the rule lives in the query too
            raise InvalidState("Someone else resumed this execution first.")
        _log_change(user=user, scope=BudgetChange.Scope.EXECUTION, field=BudgetChange.Field.TOKEN_BUDGET,
                    old=old, new=token_budget, graph_name=execution.graph_name, execution=execution,
                    detail={"tokens_used": execution.tokens_used, "resumed": True, "stopped_by": execution.error})
        transaction.on_commit(partial(_queue_advance, str(execution.id)))
        transaction.on_commit(partial(_announce, str(execution.id), Execution.Status.QUEUED))
    # As this transaction left it (a worker may already have claimed it since).
    execution.status, execution.token_budget = Execution.Status.QUEUED, token_budget
    execution.error = execution.finished_at = None
    return execution


# -- enforcement ---------------------------------------------------------------------------------------


def _usage(execution_id: Any) -> tuple[int, int | None]:
    return Execution.objects.filter(id=execution_id).values_list("tokens_used", "token_budget").get()


def handler_for(execution: Execution, base: type) -> Any:
    """The runner's trace callback handler, with the budget checks and routing spans added."""
    from orchestrator.router import ROUTE_EVENT
    from traces.callbacks import _model_name
    from traces.models import Span

    class BudgetedHandler(base):  # type: ignore[valid-type,misc]
        def __init__(self, execution_id: UUID) -> None:
            super().__init__(execution_id)
            # The call being started or ended, per thread: parallel nodes call models at the same time.
            self._current = threading.local()

        # -- what the hooks need to know about the call ---------------------------------------------------
        def on_chat_model_start(
            self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
            metadata: dict[str, Any] | None = None, **kwargs: Any,
        ) -> None:
            self._current.call = {"run_id": run_id, "name": _model_name(serialized, metadata, kwargs),
                                  "metadata": metadata or {},
                                  "input": messages[0] if len(messages) == 1 else messages}
            try:
                super().on_chat_model_start(serialized, messages, run_id=run_id, metadata=metadata, **kwargs)
            finally:
                self._current.call = None

        def on_llm_start(
            self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
            metadata: dict[str, Any] | None = None, **kwargs: Any,
        ) -> None:
            self._current.call = {"run_id": run_id, "name": _model_name(serialized, metadata, kwargs),
                                  "metadata": metadata or {}, "input": prompts}
            try:
                super().on_llm_start(serialized, prompts, run_id=run_id, metadata=metadata, **kwargs)
            finally:
                self._current.call = None

        def _write(self, opened: dict[str, Any], **fields: Any) -> Any:
            span = super()._write(opened, **fields)
            if span.kind == Span.Kind.LLM:
                self._current.span = span
            return span

        # -- the checks --------------------------------------------------------------------------------------
        def _before_llm_call(self) -> None:
            used, budget = _usage(self.execution_id)
            if budget is None or used < budget:
                return
            call = getattr(self._current, "call", None) or {}
            metadata = call.get("metadata") or {}
            message = (f"LLM call refused: the execution has used {used:,} of its {budget:,} token budget, "
                       "so the call was not made.")
            span = None
            if call:
                # The refused call shows in the trace where it would have been, marked as an error.
                key = uuid.uuid4()
                self._start(key, Span.Kind.LLM, call["name"], metadata, input=_jsonable(call["input"]))
                opened = self._pop(key)
                if opened is not None:
                    span = super()._write(opened, status=Span.Status.ERROR,
                                          error={"type": "ExecutionOverBudget", "message": message},
                                          attributes={"refused": True})
            raise ExecutionOverBudget(message, extra={
                "tokens_used": used, "token_budget": budget, "when": "before_call",
                **_where(metadata), "call": self._describe(call.get("name", ""), span, refused=True),
            })

        def _after_llm_call(self) -> None:
            used, budget = _usage(self.execution_id)
            if budget is None or used <= budget:
                return
            span = getattr(self._current, "span", None)
            raise ExecutionOverBudget(
                f"Stopped: the last LLM call took the execution to {used:,} tokens, over its {budget:,} budget.",
                extra={"tokens_used": used, "token_budget": budget, "when": "after_call",
                       "step": span.step if span is not None else None,
                       "node": _node_of(span.checkpoint_ns) if span is not None else "",
                       "call": self._describe(span.model if span is not None else "", span, refused=False)},
            )

        def _describe(self, model: str, span: Any, *, refused: bool) -> dict[str, Any]:
            """The call that hit the limit: its model, its number among the execution's calls, its span."""
            calls = Span.objects.filter(execution_id=self.execution_id, kind=Span.Kind.LLM).count()
            out: dict[str, Any] = {"model": model, "number": calls, "refused": refused}
            if span is not None:
                out.update(span_id=str(span.id), input_tokens=span.input_tokens, output_tokens=span.output_tokens)
            return out

        # -- routing decisions ------------------------------------------------------------------------------
        def on_custom_event(
            self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None, **kwargs: Any,
        ) -> None:
            if name != ROUTE_EVENT or not isinstance(data, dict):
                return
            key = uuid.uuid4()
            self._start(key, Span.Kind.ROUTER, str(data.get("router") or "router"), metadata,
                        input=_jsonable(data.get("text", "")))
            opened = self._pop(key)
            if opened is None:
                return
            elapsed = float(data.get("elapsed_ms") or 0)
            opened["started_at"] = timezone.now() - datetime.timedelta(milliseconds=elapsed)
            attributes = {k: _jsonable(v) for k, v in data.items() if k not in ("text", "router")}
            super()._write(opened, status=Span.Status.OK, output=_jsonable(data.get("chosen")),
                           attributes=attributes)

    return BudgetedHandler(execution.id)


def _jsonable(value: Any) -> Any:
    from orchestrator.jsonable import to_jsonable

    return to_jsonable(value)


def _node_of(checkpoint_ns: str) -> str:
    """``"node:task-id|child:task-id"`` → the outer node's name."""
    return checkpoint_ns.split("|")[0].split(":", 1)[0] if checkpoint_ns else ""


def _where(metadata: dict[str, Any]) -> dict[str, Any]:
    step = metadata.get("langgraph_step")
    return {"step": step if isinstance(step, int) else None, "node": str(metadata.get("langgraph_node") or "")}

