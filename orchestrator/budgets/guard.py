"""What holds every LLM call of a run to the execution's token budget, before the money is spent.

The trace callback (traces/callbacks.py) calls the guard around each call, by
composition:

1. ``before_call`` estimates the prompt's tokens (conservatively: no tokenizer
   that needs a download) and *reserves* them plus the call's output cap in one
   conditional update of the execution — ``tokens_used + tokens_reserved +
   reservation <= token_budget`` — so parallel calls of one execution can never
   both pass on the same remaining tokens. A graph's daily token limit is held
   the same way, under a lock on the graph's budget row. A call that does not fit
   is refused (``ExecutionOverBudget``) and never made; the run ends
   ``budget_exceeded`` with its state and checkpoints kept, and an admin can
   raise the budget and resume it (``budgets.execution_budget_raise``).
2. The output cap is what the reservation leaves for the answer; models built by
   ``orchestrator.llm`` pass it to the provider as ``max_tokens``
   (:func:`output_cap`).
3. ``after_call`` releases the reservation and charges what the provider
   reported, once, to the execution and to the ledger (``TokenCharge``). A call
   whose model ignored the cap is still charged in full; the next call is refused.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Greatest

from orchestrator.budgets.policy import ExecutionOverBudget, today_range
from orchestrator.models import Execution, GraphBudget, TokenCharge
from orchestrator.namespaces import outer_node

BYTES_PER_TOKEN = 3  # below every tokenizer's average for text and code: the estimate errs high
MESSAGE_OVERHEAD = 4  # role and separators, per message


def estimate_tokens(value: Any) -> int:
    """A conservative count of the tokens of a prompt (messages, strings, tool schemas): UTF-8 bytes / 3."""
    if value is None:
        return 0
    if isinstance(value, str):
        return math.ceil(len(value.encode("utf-8")) / BYTES_PER_TOKEN)
    if isinstance(value, (list, tuple)):
        return sum(estimate_tokens(item) for item in value)
    content = getattr(value, "content", None)
    if content is not None:  # a LangChain message
        calls = getattr(value, "tool_calls", None) or []
        return MESSAGE_OVERHEAD + estimate_tokens(content if isinstance(content, str) else _dump(content)) + \
            estimate_tokens(_dump(calls) if calls else None)
    return estimate_tokens(_dump(value))


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


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
        self._calls: dict[UUID, tuple[int, int]] = {}  # run id → (reserved tokens, output cap)
        self._lock = threading.Lock()

    # -- before ----------------------------------------------------------------------------------------
    def before_call(self, *, run_id: UUID, model: str, metadata: dict[str, Any] | None,
                    prompt_tokens: int) -> None:
        """Reserve the call's tokens, or refuse it (``ExecutionOverBudget``; the refusal is kept in the
        ledger and the error's ``extra["call"]`` describes it)."""
        with transaction.atomic():
            row = Execution.objects.filter(id=self.execution_id).values(
                "tokens_used", "tokens_reserved", "token_budget", "graph_name").get()
            used, held, budget = row["tokens_used"], row["tokens_reserved"], row["token_budget"]
            left = None if budget is None else budget - used - held
            daily_left, daily_limit = self._daily_left(row["graph_name"])
            room = min((x for x in (left, daily_left) if x is not None), default=None)
            refused = room is not None and prompt_tokens >= room
            if not refused:
                cap = settings.LOOPGATE_OUTPUT_TOKEN_CAP if room is None else \
                    min(settings.LOOPGATE_OUTPUT_TOKEN_CAP, room - prompt_tokens)
                reserved = prompt_tokens + cap
                fits = Q(token_budget__isnull=True) | Q(
                    token_budget__gte=F("tokens_used") + F("tokens_reserved") + reserved)
                # The conditional update decides between parallel calls of one execution.
                refused = not Execution.objects.filter(fits, id=self.execution_id).update(
                    tokens_reserved=F("tokens_reserved") + reserved)
        if refused:
            daily = daily_left is not None and (left is None or daily_left < left)
            self._refuse(model, metadata, used=used, held=held, budget=budget, prompt_tokens=prompt_tokens,
                         daily=daily, daily_limit=daily_limit)
        with self._lock:
            self._calls[run_id] = (reserved, cap)

    def _daily_left(self, graph_name: str) -> tuple[int | None, int | None]:
        """Tokens the graph's daily limit leaves (spent and reserved by today's executions), under a lock
        on the graph's budget row so that executions of one graph reserve one at a time."""
        limit = (GraphBudget.objects.select_for_update().filter(graph_name=graph_name)
                 .values_list("daily_token_limit", flat=True).first())
        if limit is None:
            return None, None
        start, end = today_range()
        today = Execution.objects.filter(graph_name=graph_name, created_at__gte=start, created_at__lt=end).aggregate(
            used=Sum("tokens_used"), held=Sum("tokens_reserved"))
        return limit - int(today["used"] or 0) - int(today["held"] or 0), limit

    def _refuse(self, model: str, metadata: dict[str, Any] | None, *, used: int, held: int, budget: int | None,
                prompt_tokens: int, daily: bool, daily_limit: int | None) -> None:
        where = call_position(metadata)
        TokenCharge.objects.create(execution_id=self.execution_id, status=TokenCharge.Status.REFUSED,
                                   model=model[:200], step=where["step"], node=where["node"][:200])
        if daily:
            message = (f"LLM call refused: the graph's daily token limit of {daily_limit:,} has no room left for "
                       f"this call's prompt of about {prompt_tokens:,} tokens, so the call was not made.")
        elif budget is not None and used + held >= budget:
            message = (f"LLM call refused: the execution has used {used:,} of its {budget:,} token budget, "
                       "so the call was not made.")
        else:
            message = (f"LLM call refused: its prompt of about {prompt_tokens:,} tokens does not fit in the "
                       f"{max(0, (budget or 0) - used - held):,} tokens left of the execution's {budget:,} budget, "
                       "so the call was not made.")
        raise ExecutionOverBudget(message, extra={
            "tokens_used": used, "token_budget": budget, "when": "before_call", "prompt_tokens": prompt_tokens,
            **({"daily_token_limit": daily_limit} if daily else {}), **where,
            "call": {"model": model, "number": self._count(), "refused": True},
        })

    def output_cap(self, run_id: UUID) -> int | None:
        """The output tokens this call may spend (None: the call was not reserved here)."""
        with self._lock:
            found = self._calls.get(run_id)
        return found[1] if found else None

    # -- after -------------------------------------------------------------------------------------------
    def after_call(self, *, run_id: UUID, model: str, metadata: dict[str, Any] | None, input_tokens: int,
                   output_tokens: int) -> None:
        """Release the call's reservation and charge what it really spent, once."""
        reserved = self._release_reservation(run_id)
        where = call_position(metadata)
        spent = input_tokens + output_tokens
        with transaction.atomic():
            TokenCharge.objects.create(execution_id=self.execution_id, model=model[:200], step=where["step"],
                                       node=where["node"][:200], input_tokens=input_tokens,
                                       output_tokens=output_tokens)
            # One conditional update: parallel calls never lose each other's tokens.
            Execution.objects.filter(id=self.execution_id).update(
                tokens_used=F("tokens_used") + spent, tokens_reserved=Greatest(F("tokens_reserved") - reserved, 0))

    def call_failed(self, *, run_id: UUID) -> None:
        """The provider failed: nothing was spent, the reservation goes back."""
        reserved = self._release_reservation(run_id)
        if reserved:
            Execution.objects.filter(id=self.execution_id).update(
                tokens_reserved=Greatest(F("tokens_reserved") - reserved, 0))

    def _release_reservation(self, run_id: UUID) -> int:
        with self._lock:
            found = self._calls.pop(run_id, None)
        return found[0] if found else 0

    def _count(self) -> int:
        return TokenCharge.objects.filter(execution_id=self.execution_id).count()


def with_output_cap(run_manager: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A model call's keyword arguments with ``max_tokens`` lowered to what the execution's budget leaves
    it: the call cannot spend past the budget, whatever it was asked. For a model's ``_generate``."""
    cap = output_cap(run_manager)
    if cap is not None:
        asked = kwargs.get("max_tokens")
        kwargs = {**kwargs, "max_tokens": cap if asked is None else min(int(asked), cap)}
    return kwargs


def output_cap(run_manager: Any) -> int | None:
    """For a model's ``_generate``: the output tokens the budget leaves the call being made (``None``:
    no guard watches this run). Found through the run's callback handlers, where the trace callback
    carries its guard."""
    if run_manager is None:
        return None
    for handler in list(getattr(run_manager, "handlers", []) or []) + list(
            getattr(run_manager, "inheritable_handlers", []) or []):
        guard = getattr(handler, "guard", None)
        if isinstance(guard, BudgetGuard):
            return guard.output_cap(run_manager.run_id)
    return None
