"""The deep-research example on a real Celery worker process, Postgres and Redis: its trace.

One span per node run, the LLM calls (with their token counts) and tool calls under the node
that made them, everything in the order it happened.
"""

from __future__ import annotations

import pytest

from orchestrator import services
from orchestrator.models import Execution
from tests.services import wait_for
from traces.models import Span, Step

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker(worker):  # type: ignore[no-untyped-def]
    return worker("traces")


def test_deep_research_records_a_span_per_node_run_with_its_llm_calls_and_tokens_in_order(worker) -> None:  # type: ignore[no-untyped-def]
    execution = services.execution_start(
        graph_name="deep_research", input={"task": "Compare durable execution options", "max_iterations": 2}, user=None)
    wait_for(lambda: Execution.objects.filter(id=execution.id, status__in=Execution.FINISHED).exists(), timeout=90,
             what="the deep-research execution")
    execution.refresh_from_db()
    assert execution.status == Execution.Status.SUCCEEDED, execution.error

    steps = list(Step.objects.filter(execution=execution).order_by("step"))
    node_spans = list(Span.objects.filter(execution=execution, kind=Span.Kind.NODE).order_by("started_at"))
    # One node span per node run: every step after the input names exactly the node spans of that step.
    assert steps[0].nodes == ["__start__"]
    assert [(s.step, s.nodes) for s in steps[1:]] == [(s.step, [s.name]) for s in node_spans]
    assert {s.name for s in node_spans} == {"supervisor", "search", "search_tools", "synthesizer"}
    assert all(s.status == Span.Status.OK and s.parent_id is None for s in node_spans)

    # Each agent node made one LLM call, under its own span, with tokens; the tool node one tool call.
    llm_total = 0
    for node in node_spans:
        children = list(Span.objects.filter(parent=node).order_by("started_at"))
        if node.name == "search_tools":
            assert [(c.kind, c.name) for c in children] == [(Span.Kind.TOOL, "search")]
            assert children[0].input and children[0].output
            continue
        # The supervisor's routing decision is a span of its own (after its call); nothing else is there.
        assert [c.kind for c in children if c.kind != Span.Kind.ROUTER] == [Span.Kind.LLM], node.name
        assert all(c.kind == Span.Kind.LLM or node.name == "supervisor" for c in children)
        call = next(c for c in children if c.kind == Span.Kind.LLM)
        assert call.model == "loopgate-offline"
        assert call.input_tokens > 0 and call.output_tokens > 0
        assert call.step == node.step and call.task_id == node.task_id
        assert node.started_at <= call.started_at <= call.ended_at <= node.ended_at
        assert [m["type"] for m in call.input][0] == "system"
        assert call.output["type"] == "ai"
        llm_total += call.total_tokens
        step = next(s for s in steps if s.step == node.step)
        assert step.tokens == call.total_tokens
    # Nothing left over: no orphan calls, and the tokens add up to what the execution was charged.
    assert not Span.objects.filter(execution=execution, parent__isnull=True).exclude(kind=Span.Kind.NODE).exists()
    assert llm_total == execution.tokens_used
    # In order: node spans follow one another, as the steps do.
    assert all(a.ended_at <= b.started_at for a, b in zip(node_spans, node_spans[1:]))
    assert [s.name for s in node_spans][:4] == ["supervisor", "search", "search_tools", "search"]
    assert node_spans[-1].name == "synthesizer"
