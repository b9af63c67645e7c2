"""Token budgets, enforced on every LLM call of an execution.

Before a call: refuse it if the execution has already used its budget. After a
call: stop the execution if the call took it over. Either way the run ends
``budget_exceeded`` with its state and checkpoints kept, so an admin can raise
the budget and resume it.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import BudgetExceeded
from orchestrator.models import Execution


class ExecutionOverBudget(BudgetExceeded):
    execution_status = Execution.Status.BUDGET_EXCEEDED


def _usage(execution_id: Any) -> tuple[int, int | None]:
    return Execution.objects.filter(id=execution_id).values_list("tokens_used", "token_budget").get()


def handler_for(execution: Execution, base: type) -> Any:
    """The runner's trace callback handler, with the budget checks added."""

    class BudgetedHandler(base):  # type: ignore[valid-type,misc]
        def _before_llm_call(self) -> None:
            used, budget = _usage(self.execution_id)
            if budget is not None and used >= budget:
                raise ExecutionOverBudget(
                    f"LLM call refused: the execution has used {used:,} of its {budget:,} token budget.",
                    extra={"tokens_used": used, "token_budget": budget, "when": "before_call"},
                )

        def _after_llm_call(self) -> None:
            used, budget = _usage(self.execution_id)
            if budget is not None and used > budget:
                raise ExecutionOverBudget(
                    f"Stopped: the last LLM call took the execution to {used:,} tokens, over its {budget:,} budget.",
                    extra={"tokens_used": used, "token_budget": budget, "when": "after_call"},
                )

    return BudgetedHandler(execution.id)
