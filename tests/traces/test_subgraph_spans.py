"""Calls made inside a subgraph: a LangChain agent (``create_agent``) used as a node.

LangGraph tells the callback the subgraph's own step and task; the spans must still land under
the outer node's span, in the outer step, with their tokens counted there. Run by the runner's own
code in the test's thread, on real Postgres.
"""

from __future__ import annotations

import pytest

from orchestrator import services
from orchestrator.models import Execution
from traces import selectors
from traces.models import Span, Step

pytestmark = pytest.mark.django_db(transaction=True)


class SubgraphSpanTests:
    def test_an_agent_nodes_llm_and_tool_calls_sit_under_its_node_span_and_step_with_their_tokens(self, inline) -> None:  # type: ignore[no-untyped-def]
        execution = inline(services.execution_start(graph_name="t_agent_node", input={"topic": "checkpoint"},
                                                     user=None))
        assert execution.status == Execution.Status.SUCCEEDED, execution.error

        prepare = Span.objects.get(execution=execution, kind=Span.Kind.NODE, name="prepare")
        agent = Span.objects.get(execution=execution, kind=Span.Kind.NODE, name="agent")
        assert (prepare.step, agent.step) == (1, 2)

        calls = list(Span.objects.filter(execution=execution).exclude(kind=Span.Kind.NODE).order_by("started_at"))
        assert [c.kind for c in calls] == [Span.Kind.LLM, Span.Kind.TOOL, Span.Kind.LLM]
        for call in calls:
            assert call.parent_id == agent.id, call
            assert (call.step, call.task_id) == (2, agent.task_id), call
            assert agent.started_at <= call.started_at <= call.ended_at <= agent.ended_at
        # The subgraph's own path (its node and step) is kept for the reader.
        assert [(c.attributes["subgraph"]["node"], c.attributes["subgraph"]["step"]) for c in calls] == [
            ("model", 1), ("tools", 2), ("model", 3)]
        assert all(c.attributes["subgraph"]["checkpoint_ns"].startswith(f"agent:{agent.task_id}|") for c in calls)
        assert calls[1].name == "lookup" and "checkpoint" in str(calls[1].output)

        llm_tokens = sum(c.total_tokens for c in calls if c.kind == Span.Kind.LLM)
        assert llm_tokens > 0 and llm_tokens == execution.tokens_used
        steps = {s.step: s for s in Step.objects.filter(execution=execution)}
        assert (steps[1].nodes, steps[1].tokens) == (["prepare"], 0)
        assert (steps[2].nodes, steps[2].tokens) == (["agent"], llm_tokens)

        # The step pages and exports show the calls under the agent, and nowhere else.
        rows = selectors.step_spans(step=steps[2])
        assert [(r.span.id, r.depth) for r in rows] == [(agent.id, 0)] + [(c.id, 1) for c in calls]
        assert [r.span.id for r in selectors.step_spans(step=steps[1])] == [prepare.id]
        exported = selectors.execution_export_step(step=steps[2])["spans"]
        assert [s["id"] for s in exported] == [str(agent.id)] + [str(c.id) for c in calls]
        assert not selectors.unstepped_spans(execution=execution)
