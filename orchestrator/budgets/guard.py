"""What holds every LLM call of a run to the execution's token budget.

The trace callback (traces/callbacks.py) calls the guard around each call, by
composition: ``before_call`` refuses a call once the execution has used its
budget; ``after_call`` charges the call's tokens to the execution and to the
ledger (``TokenCharge``), and stops the execution if the call took it over.
Either way the run ends ``budget_exceeded`` with its state and checkpoints
kept, and an admin can raise the budget and resume it
(``budgets.execution_budget_raise``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import F

from orchestrator.budgets.policy import ExecutionOverBudget
from orchestrator.namespaces import outer_node
from orchestrator.models import Execution, TokenCharge


def call_position(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Where a call happens, from LangChain's run metadata: the step and the (outer) node."""
    metadata = metadata or {}
    step = metadata.get("langgraph_step")
    ns = metadata.get("langgraph_checkpoint_ns") or metadata.get("checkpoint_ns") or ""
    node = outer_node(ns) if ns else str(metadata.get("langgraph_node") or "")
    return {"step": step if isinstance(step, int) and "|" not in ns else None, "node": node}


class BudgetGuard:
    """One run's budget checks. Thread-safe: parallel nodes call models at the same time."""

    def __init__(self, execution_id: UUID) -> None:
        self.execution_id = execution_id

    def _usage(self) -> tuple[int, int | None]:
        return Execution.objects.filter(id=self.execution_id).values_list("tokens_used", "token_budget").get()

    def before_call(self, *, model: str, metadata: dict[str, Any] | None) -> None:
        """Refuse the call (``ExecutionOverBudget``) when the execution has no tokens left; the refused
        call is kept in the ledger. The error's ``extra["call"]`` describes it."""
        used, budget = self._usage()
        if budget is None or used < budget:
            return
        where = call_position(metadata)
        TokenCharge.objects.create(execution_id=self.execution_id, status=TokenCharge.Status.REFUSED,
                                   model=model[:200], step=where["step"], node=where["node"][:200])
        raise ExecutionOverBudget(
            f"LLM call refused: the execution has used {used:,} of its {budget:,} token budget, "
            "so the call was not made.",
            extra={"tokens_used": used, "token_budget": budget, "when": "before_call", **where,
                   "call": {"model": model, "number": self._calls(), "refused": True}},
        )

    def after_call(self, *, model: str, metadata: dict[str, Any] | None, input_tokens: int,
                   output_tokens: int) -> None:
        """Charge the call; stop the execution (``ExecutionOverBudget``) if it went over its budget."""
        where = call_position(metadata)
        with transaction.atomic():
            TokenCharge.objects.create(execution_id=self.execution_id, model=model[:200], step=where["step"],
                                       node=where["node"][:200], input_tokens=input_tokens,
                                       output_tokens=output_tokens)
            if input_tokens + output_tokens > 0:
                # One conditional update: parallel calls never lose each other's tokens.
                Execution.objects.filter(id=self.execution_id).update(
                    tokens_used=F("tokens_used") + input_tokens + output_tokens)
        used, budget = self._usage()
        if budget is None or used <= budget:
            return
        raise ExecutionOverBudget(
            f"Stopped: the last LLM call took the execution to {used:,} tokens, over its {budget:,} budget.",
            extra={"tokens_used": used, "token_budget": budget, "when": "after_call", **where,
                   "call": {"model": model, "number": self._calls(), "refused": False,
                            "input_tokens": input_tokens, "output_tokens": output_tokens}},
        )

    def _calls(self) -> int:
        return TokenCharge.objects.filter(execution_id=self.execution_id).count()
