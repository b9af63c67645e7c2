"""Build executions with steps and spans directly, as the recorder would have written them."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.utils import timezone

from orchestrator.models import Execution
from tests.escaping import HOSTILE
from tests.factories import fixture_execution, fixture_llm_call
from traces.models import Span, Step


def make_execution(**fields: Any) -> Execution:
    now = timezone.now()
    values: dict[str, Any] = {
        "graph_name": "seed", "graph_version": "3f9c2a1b7d4e", "status": Execution.Status.SUCCEEDED,
        "input": {"task": "Survey engines"}, "state": {"reports": ["one"]}, "tokens_used": 0, "token_budget": 50_000,
        "started_at": now - datetime.timedelta(seconds=5), "finished_at": now,
    }
    values.update(fields)
    return fixture_execution(**values)


def make_steps(execution: Execution, count: int, *, node: str = "researcher", start: int = 0) -> list[Step]:
    base = timezone.now() - datetime.timedelta(seconds=count)
    steps = [
        Step(
            execution=execution, step=start + i, nodes=[node if i % 2 == 0 else "supervisor"],
            checkpoint_id=f"cp-{uuid.uuid4().hex}", parent_checkpoint_id="",
            update={node: {"reports": [f"finding {i}"]}},
            diff=[{"op": "add", "path": f"reports[{i}]", "after": f"finding {i}"}],
            tokens=100 + i, bytes_written=512 + i,
            started_at=base + datetime.timedelta(seconds=i), finished_at=base + datetime.timedelta(seconds=i, milliseconds=40),
        )
        for i in range(count)
    ]
    Step.objects.bulk_create(steps, batch_size=500)
    Execution.objects.filter(id=execution.id).update(step_count=count)
    return list(Step.objects.filter(execution=execution).order_by("id"))


def make_llm_step(execution: Execution, *, step_number: int = 1, content: str = "Find engines",
                  answer: str = "Temporal and Celery", tool_result: str = "3 results") -> Step:
    """A step whose node made an LLM call and a tool call, with their spans."""
    t0 = timezone.now() - datetime.timedelta(seconds=2)
    ms = datetime.timedelta(milliseconds=1)
    node = Span.objects.create(execution=execution, kind=Span.Kind.NODE, name="search", step=step_number, task_id="t1",
                               output={"messages": [{"type": "ai", "content": answer}]},
                               started_at=t0, ended_at=t0 + 900 * ms)
    fixture_llm_call(execution=execution, parent=node, name="gpt-4o-mini", model="gpt-4o-mini",
                        step=step_number, task_id="t1",
                        input=[{"type": "system", "content": "You search."}, {"type": "human", "content": content}],
                        output={"type": "ai", "content": answer,
                                "tool_calls": [{"name": "search", "args": {"query": content}, "id": "call_1"}]},
                        input_tokens=412, output_tokens=38, started_at=t0 + 10 * ms, ended_at=t0 + 610 * ms)
    Span.objects.create(execution=execution, parent=node, kind=Span.Kind.TOOL, name="search", step=step_number,
                        task_id="t1", input={"query": content}, output=tool_result,
                        started_at=t0 + 620 * ms, ended_at=t0 + 880 * ms)
    return Step.objects.create(
        execution=execution, step=step_number, nodes=["search"], checkpoint_id=f"cp-{uuid.uuid4().hex}",
        update={"search": {"notes": [answer]}}, diff=[{"op": "add", "path": "notes[0]", "after": answer}],
        tokens=450, bytes_written=2048, started_at=t0, finished_at=t0 + 900 * ms,
    )
