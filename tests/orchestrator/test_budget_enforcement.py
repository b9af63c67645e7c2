"""Budget enforcement: the runner's callback on every LLM call of an execution.

First in-process (the callback on a graph compiled with LangGraph's in-memory
saver), then for real: a worker process runs an endless loop of 1,000-token
calls with a budget of 10,000, and an admin raises the budget and resumes it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import TestCase
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import budgets, registry, services
from orchestrator.budgets import ExecutionOverBudget
from orchestrator.models import Checkpoint, Execution, TokenCharge
from tests.factories import fixture_execution, make_role_users
from tests.orchestrator import budget_graphs
from tests.services import wait_for
from traces.callbacks import TraceCallbackHandler
from traces.models import Span

Status = Execution.Status


def run_in_process(execution: Execution, *, state: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Run the endless loop under the execution's budget callback until the callback stops it."""
    graph = budget_graphs.loop.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": 1000,
              "callbacks": [TraceCallbackHandler(execution.id)]}
    with pytest.raises(ExecutionOverBudget) as caught:
        graph.invoke(state or {"n": 0}, config)
    return caught.value, graph.get_state(config).values


class BudgetCallbackTests(TestCase):
    def test_the_call_that_would_pass_the_budget_is_refused_before_it_is_made(self) -> None:
        execution = fixture_execution(graph_name="t_budget_loop", token_budget=10_000)
        error, state = run_in_process(execution)
        execution.refresh_from_db()
        self.assertEqual(execution.tokens_used, 10_000)
        self.assertEqual(state["n"], 10)
        ok = Span.objects.filter(execution=execution, kind=Span.Kind.LLM, status=Span.Status.OK)
        self.assertEqual(ok.count(), 10)
        self.assertEqual({(s.model, s.input_tokens, s.output_tokens) for s in ok}, {("fake-1k", 600, 400)})
        # The refused eleventh call is in the trace, as an error that spent nothing.
        refused = Span.objects.get(execution=execution, kind=Span.Kind.LLM, status=Span.Status.ERROR)
        self.assertEqual((refused.model, refused.total_tokens, refused.attributes), ("fake-1k", 0, {"refused": True}))
        self.assertEqual(error.extra["when"], "before_call")
        self.assertEqual((error.extra["tokens_used"], error.extra["token_budget"]), (10_000, 10_000))
        self.assertEqual(error.extra["node"], "think")
        self.assertEqual(error.extra["step"], 11)
        self.assertEqual(error.extra["call"], {"model": "fake-1k", "number": 11, "refused": True,
                                               "span_id": str(refused.id), "input_tokens": 0, "output_tokens": 0})
        self.assertIn("used 10,000 of its 10,000 token budget", error.message)

    def test_a_call_whose_model_ignores_the_cap_is_charged_once_and_the_next_is_refused(self) -> None:
        # The fake model reports 1,000 tokens whatever max_tokens says: the third call, reserved with the
        # 500 tokens left, spends 1,000. It is charged as spent, once, its node's update is kept, and the
        # fourth call is refused before it is made.
        execution = fixture_execution(graph_name="t_budget_loop", token_budget=2_500)
        error, state = run_in_process(execution)
        execution.refresh_from_db()
        self.assertEqual((execution.tokens_used, execution.tokens_reserved), (3_000, 0))
        self.assertEqual(state["n"], 3)
        self.assertEqual(TokenCharge.objects.filter(execution=execution, status="settled").count(), 3)
        self.assertEqual(error.extra["when"], "before_call")
        self.assertEqual(error.extra["call"]["number"], 4)
        self.assertEqual((error.extra["node"], error.extra["step"]), ("think", 4))
        self.assertIn("used 3,000 of its 2,500 token budget", error.message)

    def test_an_execution_without_a_budget_is_not_stopped(self) -> None:
        execution = fixture_execution(graph_name="t_budget_loop", token_budget=None)
        graph = budget_graphs.loop.compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "x"}, "recursion_limit": 6,
                  "callbacks": [TraceCallbackHandler(execution.id)]}
        from langgraph.errors import GraphRecursionError

        with pytest.raises(GraphRecursionError):
            graph.invoke({"n": 0}, config)
        execution.refresh_from_db()
        self.assertEqual(execution.tokens_used, 6_000)



def checkpointed_state(execution: Execution) -> dict[str, Any]:
    graph = registry.get_graph(execution.graph_name).compiled
    return graph.get_state({"configurable": {"thread_id": execution.thread_id}}).values


def _ended(execution_id: Any) -> Any:
    return lambda: Execution.objects.filter(id=execution_id, status__in=Execution.FINISHED).first()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_an_endless_loop_stops_at_its_budget_and_resumes_where_it_stopped_after_a_raise(worker) -> None:  # type: ignore[no-untyped-def]
    registry.reset()
    users = make_role_users()
    worker()
    execution = services.execution_start(graph_name="t_budget_loop", input={"n": 0}, user=users["admin"],
                                         token_budget=10_000)
    wait_for(_ended(execution.id), timeout=90, what="the endless loop to run out of budget")
    execution.refresh_from_db()
    assert execution.status == Status.BUDGET_EXCEEDED, execution.error
    assert execution.tokens_used <= 10_000
    assert execution.tokens_used == 10_000
    ok = Span.objects.filter(execution=execution, kind=Span.Kind.LLM, status=Span.Status.OK)
    assert ok.count() == 10  # not one call past the budget
    error = execution.error
    assert error["when"] == "before_call" and error["code"] == "budget_exceeded"
    assert error["node"] == "think" and error["step"] == 11
    assert error["call"]["number"] == 11 and error["call"]["refused"] is True
    assert "LLM call refused" in error["reason"]
    # Its checkpoints and state are kept: ten calls returned.
    assert Checkpoint.objects.filter(thread_id=str(execution.id)).count() >= 11
    assert checkpointed_state(execution)["n"] == 10
    assert execution.state["n"] == 10  # shown on the page as the state where it stopped

    resumed = budgets.execution_budget_raise(execution_id=execution.id, user=users["admin"], token_budget=15_000)
    assert resumed.status == Status.QUEUED
    wait_for(_ended(execution.id), timeout=90, what="the resumed loop to stop again")
    execution.refresh_from_db()
    assert execution.status == Status.BUDGET_EXCEEDED, execution.error
    # Continued from the stop: five more calls, and the counter went on from 10 (a restart would read 5).
    assert execution.tokens_used == 15_000
    assert checkpointed_state(execution)["n"] == 15
    assert Span.objects.filter(execution=execution, kind=Span.Kind.LLM, status=Span.Status.OK).count() == 15
    assert execution.error["step"] == 16
