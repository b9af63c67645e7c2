"""Token budgets: what admins set (``admin``), what an execution starts with and what
pages show (``policy``), and what holds every LLM call to the budget (``guard``).

Where a budget comes from, in order: the one given when the execution starts
(never above the graph's, unless an admin starts it), the graph's budget, the
default budget (set on the Budgets page, else ``LOOPGATE_DEFAULT_TOKEN_BUDGET``).
The execution keeps the budget it started with; later changes apply to new
executions only. A graph's optional daily token limit refuses new executions
once its executions started today have used it up.
"""

from orchestrator.budgets.admin import budget_set_default, execution_budget_raise, graph_budget_set
from orchestrator.budgets.guard import BudgetGuard
from orchestrator.budgets.policy import (
    MAX_TOKEN_BUDGET,
    DailyTokenLimitReached,
    EffectiveBudget,
    ExecutionOverBudget,
    GraphBudgetRow,
    budget_change_list,
    budget_for_start,
    budget_overview,
    default_token_budget,
    graph_effective_budget,
    graph_tokens_today,
    today_range,
)

__all__ = [
    "MAX_TOKEN_BUDGET", "BudgetGuard", "DailyTokenLimitReached", "EffectiveBudget", "ExecutionOverBudget",
    "GraphBudgetRow", "budget_change_list", "budget_for_start", "budget_overview", "budget_set_default",
    "default_token_budget", "execution_budget_raise", "graph_budget_set", "graph_effective_budget",
    "graph_tokens_today", "today_range",
]
