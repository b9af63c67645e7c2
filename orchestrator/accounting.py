"""LLM accounting: tokens per execution, prices per model, usage per graph per day.

The budget guard (orchestrator/budgets/guard.py) charges every LLM call to its
execution (``tokens_used``) and to the ledger (``TokenCharge``: model, input and
output tokens), which this module reads. Cost is never stored: it is the ledger's
tokens times ``LOOPGATE_PRICES`` (per million input and output tokens, in
``LOOPGATE_CURRENCY``), so a corrected price table corrects every page.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from orchestrator.models import Execution, TokenCharge


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


def cost_of(model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
    """What the tokens cost at the model's price; ``None`` when the price table does not name the model."""
    prices = getattr(settings, "LOOPGATE_PRICES", {}).get(model)
    if not prices:
        return None
    per_million = Decimal(1_000_000)
    return (Decimal(str(prices[0])) * input_tokens + Decimal(str(prices[1])) * output_tokens) / per_million


@dataclass(frozen=True)
class ModelUsage:
    model: str
    calls: int
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost(self) -> Decimal | None:
        return cost_of(self.model, self.input_tokens, self.output_tokens)


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of some LLM calls, per model."""

    models: list[ModelUsage] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(m.calls for m in self.models)

    @property
    def input_tokens(self) -> int:
        return sum(m.input_tokens for m in self.models)

    @property
    def output_tokens(self) -> int:
        return sum(m.output_tokens for m in self.models)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def unpriced_models(self) -> list[str]:
        return [m.model for m in self.models if m.total_tokens and m.cost is None]

    @property
    def cost(self) -> Decimal | None:
        """The sum over models; ``None`` if a model that used tokens has no price (a partial sum would mislead)."""
        if self.unpriced_models:
            return None
        return sum((m.cost or Decimal(0) for m in self.models), Decimal(0))


def _usage_rows(rows: Any) -> list[ModelUsage]:
    return [
        ModelUsage(model=row["model"] or "unknown", calls=row["calls"], input_tokens=int(row["input"] or 0),
                   output_tokens=int(row["output"] or 0))
        for row in rows
    ]


def execution_usage(execution: Execution | UUID) -> Usage:
    """Tokens and cost of one execution's LLM calls, per model (from the ledger)."""
    execution_id = getattr(execution, "id", execution)
    rows = (
        TokenCharge.objects.filter(execution_id=execution_id)
        .values("model")
        .annotate(calls=Count("id"), input=Sum("input_tokens"), output=Sum("output_tokens"))
        .order_by("model")
    )
    return Usage(_usage_rows(rows))


def execution_costs(execution_ids: list[UUID]) -> dict[UUID, Decimal | None]:
    """``execution_cost`` for many executions in one query (API lists)."""
    rows = (
        TokenCharge.objects.filter(execution_id__in=execution_ids)
        .values("execution_id", "model")
        .annotate(calls=Count("id"), input=Sum("input_tokens"), output=Sum("output_tokens"))
        .order_by("execution_id", "model")
    )
    by_execution: dict[UUID, list[dict[str, Any]]] = {execution_id: [] for execution_id in execution_ids}
    for row in rows:
        by_execution[row["execution_id"]].append(row)
    return {execution_id: Usage(_usage_rows(found)).cost for execution_id, found in by_execution.items()}


def execution_cost(execution: Execution | UUID) -> Decimal | None:
    """What an execution's LLM calls cost, for ``{{ cost|cost }}``.

    ``Decimal(0)`` for an execution without LLM calls; ``None`` when a model it
    used has no price in ``LOOPGATE_PRICES`` (the page then shows "—").
    """
    return execution_usage(execution).cost


@dataclass
class GraphDay:
    """One graph's usage on one day: executions created that day, their tokens and the cost of their calls."""

    graph_name: str
    day: datetime.date
    executions: int = 0
    tokens: int = 0
    usage: Usage = field(default_factory=Usage)

    @property
    def cost(self) -> Decimal | None:
        return self.usage.cost


def graph_usage_by_day(*, days: int = 7, graph_names: list[str] | None = None) -> list[GraphDay]:
    """Usage per graph per day for the last ``days`` days (today included), newest day first.

    A day is a calendar day in ``TIME_ZONE``; an execution counts on the day it
    was created, as for the daily token limit.
    """
    first_day = timezone.localdate() - datetime.timedelta(days=days - 1)
    since = timezone.make_aware(datetime.datetime.combine(first_day, datetime.time.min))
    executions = Execution.objects.filter(created_at__gte=since)
    spans = TokenCharge.objects.filter(execution__created_at__gte=since)
    if graph_names is not None:
        executions = executions.filter(graph_name__in=graph_names)
        spans = spans.filter(execution__graph_name__in=graph_names)

    out: dict[tuple[str, datetime.date], GraphDay] = {}
    for row in (
        executions.annotate(day=TruncDate("created_at"))
        .values("graph_name", "day")
        .annotate(executions=Count("id"), tokens=Sum("tokens_used"))
    ):
        key = (row["graph_name"], row["day"])
        out[key] = GraphDay(row["graph_name"], row["day"], executions=row["executions"], tokens=int(row["tokens"] or 0))
    per_model: dict[tuple[str, datetime.date], list[dict[str, Any]]] = defaultdict(list)
    for row in (
        spans.annotate(day=TruncDate("execution__created_at"))
        .values("execution__graph_name", "day", "model")
        .annotate(calls=Count("id"), input=Sum("input_tokens"), output=Sum("output_tokens"))
        .order_by("model")
    ):
        per_model[(row["execution__graph_name"], row["day"])].append(row)
    for key, rows in per_model.items():
        day = out.setdefault(key, GraphDay(key[0], key[1]))
        day.usage = Usage(_usage_rows(rows))
    return sorted(out.values(), key=lambda d: (-d.day.toordinal(), d.graph_name))
