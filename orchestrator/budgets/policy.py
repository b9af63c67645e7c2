"""Token budgets: where an execution's budget comes from, the graph's daily limit, and what the Budgets
page reads. The rules are in the package's docstring (orchestrator/budgets/__init__.py)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.utils import timezone

from orchestrator import roles
from orchestrator.errors import BudgetExceeded, LoopgateError
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


