"""LLM accounting: tokens per execution, prices per model.

The runner's callback charges every LLM call here; budgets are enforced on top.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import F

from orchestrator.models import Execution


def usage_from_response(response: Any) -> tuple[int, int]:
    """Input and output tokens of a LangChain ``LLMResult``, from the provider's usage data."""
    input_tokens = output_tokens = 0
    found = False
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if usage:
                input_tokens += int(usage.get("input_tokens", 0) or 0)
                output_tokens += int(usage.get("output_tokens", 0) or 0)
                found = True
    if not found:
        usage = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
        input_tokens = int(usage.get("prompt_tokens", 0) or 0)
        output_tokens = int(usage.get("completion_tokens", 0) or 0)
    return input_tokens, output_tokens


def execution_charge_tokens(*, execution_id: UUID, tokens: int) -> None:
    """Add tokens to an execution in one conditional update (no lost updates)."""
    if tokens > 0:
        Execution.objects.filter(id=execution_id).update(tokens_used=F("tokens_used") + tokens)


def cost_of(model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
    prices = getattr(settings, "LOOPGATE_PRICES", {}).get(model)
    if not prices:
        return None
    per_million = Decimal(1_000_000)
    return (Decimal(str(prices[0])) * input_tokens + Decimal(str(prices[1])) * output_tokens) / per_million
