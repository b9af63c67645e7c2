"""Budgets hold before the money is spent: a call is reserved (its prompt's estimate and its output
cap) in the database before it is made, refused when it does not fit, and capped to what is left.

In process, on graphs compiled with LangGraph's in-memory saver and the run's real trace callback
(whose budget guard writes the execution's row in Postgres)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.test import TransactionTestCase
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from orchestrator import llm
from orchestrator.budgets import ExecutionOverBudget
from orchestrator.budgets.guard import estimate_tokens
from orchestrator.examples import deep_research
from orchestrator.models import Execution, GraphBudget, TokenCharge
from tests.factories import fixture_execution
from tests.orchestrator import budget_graphs
from traces.callbacks import TraceCallbackHandler


def run(graph: Any, execution: Execution, state: dict[str, Any]) -> tuple[BaseException | None, dict[str, Any]]:
    config = {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": 100,
              "callbacks": [TraceCallbackHandler(execution.id)]}
    try:
        graph.invoke(state, config)
        error = None
    except ExecutionOverBudget as exc:
        error = exc
    return error, graph.get_state(config).values


class Pair(TypedDict, total=False):
    answers: list[str]


def _parallel_graph(barrier: threading.Barrier) -> Any:
    def ask(name: str) -> Any:
        def node(state: Pair) -> dict[str, Any]:
            barrier.wait(timeout=10)  # both calls start together
            reply = budget_graphs.ThousandTokenModel().invoke([HumanMessage(f"{name}?")])
            return {"answers": [*state.get("answers", []), str(reply.content)]}
        return node

    graph = StateGraph(Pair)
    graph.add_node("left", ask("left"))
    graph.add_node("right", ask("right"))
    graph.add_edge(START, "left")
    graph.add_edge(START, "right")
    return graph.compile(checkpointer=InMemorySaver())


class ReservationTests(TransactionTestCase):
    """Committed rows: parallel nodes run on threads of their own, with connections of their own."""

    def test_a_prompt_larger_than_the_budget_is_refused_before_any_token_is_spent(self) -> None:
        # The new user's case: deep_research with a 1,500-token budget and a 200,000-character task.
        execution = fixture_execution(graph_name="deep_research", token_budget=1_500)
        task = "Compare the engines. " * 10_000  # 210,000 characters
        graph = deep_research.workflow.compile(checkpointer=InMemorySaver())
        error, _ = run(graph, execution, {**deep_research.EXAMPLE_INPUT, "task": task})
        execution.refresh_from_db()
        assert isinstance(error, ExecutionOverBudget), error
        assert execution.tokens_used <= 1_500
        assert execution.tokens_reserved == 0
        assert error.extra["prompt_tokens"] >= len(task) // 4
        assert "does not fit" in error.message
        assert TokenCharge.objects.filter(execution=execution, status="refused").count() == 1

    def test_two_parallel_calls_with_room_for_one_run_exactly_one(self) -> None:
        # Room for one call of 1,000 tokens: the first to reserve holds it all; the other is refused.
        execution = fixture_execution(graph_name="t_budget_loop", token_budget=1_000)
        error, _ = run(_parallel_graph(threading.Barrier(2)), execution, {})
        execution.refresh_from_db()
        assert isinstance(error, ExecutionOverBudget)
        assert TokenCharge.objects.filter(execution=execution, status="settled").count() == 1
        assert TokenCharge.objects.filter(execution=execution, status="refused").count() == 1
        assert (execution.tokens_used, execution.tokens_reserved) == (1_000, 0)

    def test_the_daily_limit_is_reserved_across_executions_of_the_graph(self) -> None:
        GraphBudget.objects.create(graph_name="t_budget_loop", daily_token_limit=1_500)
        first = fixture_execution(graph_name="t_budget_loop", token_budget=None)
        second = fixture_execution(graph_name="t_budget_loop", token_budget=None)
        graph = budget_graphs.loop.compile(checkpointer=InMemorySaver())
        error, state = run(graph, first, {"n": 0})
        assert isinstance(error, ExecutionOverBudget) and "daily token limit" in error.message
        # The second call was reserved with the 500 left (its fake model ignores the cap and spends
        # 1,000); the third finds the day's limit used.
        assert state["n"] == 2
        error, state = run(graph, second, {"n": 0})
        assert isinstance(error, ExecutionOverBudget) and state.get("n", 0) == 0
        spent = sum(Execution.objects.filter(graph_name="t_budget_loop").values_list("tokens_used", flat=True))
        assert spent == 2_000

    def test_a_model_built_by_loopgate_is_capped_to_what_the_budget_leaves(self) -> None:
        model = llm.get_chat_model("default")  # the offline model: no provider configured in tests
        prompt = [HumanMessage("Write a long report about engines. " * 20)]
        estimate = estimate_tokens(prompt)
        execution = fixture_execution(graph_name="seed", token_budget=estimate + 5)

        class S(TypedDict, total=False):
            text: str

        def write(state: S) -> dict[str, Any]:
            return {"text": str(model.invoke(prompt).content)}

        graph = StateGraph(S)
        graph.add_node("write", write)
        graph.add_edge(START, "write")
        error, state = run(graph.compile(checkpointer=InMemorySaver()), execution, {})
        execution.refresh_from_db()
        assert error is None
        charge = TokenCharge.objects.get(execution=execution)
        assert charge.output_tokens <= 5
        assert execution.tokens_used <= execution.token_budget


@pytest.mark.parametrize("value, at_least", [("abcd" * 300, 400), ("日本語" * 100, 300), ([HumanMessage("hi")], 5)])
def test_the_prompt_estimate_errs_high(value: Any, at_least: int) -> None:
    assert estimate_tokens(value) >= at_least
