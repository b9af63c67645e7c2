"""How the recorder writes a run's trace on Postgres: a node's span goes in with its step's row, in one
statement, and a span whose step never comes is written all the same."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orchestrator import services
from orchestrator.models import Execution
from traces.models import Span, Step

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_steps_node_spans_are_written_in_the_statement_of_its_step_row(inline) -> None:  # type: ignore[no-untyped-def]
    execution = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 3}, user=None)
    with CaptureQueriesContext(connection) as queries:
        execution = inline(execution)
    assert execution.status == Execution.Status.SUCCEEDED, execution.error
    spans = Span.objects.filter(execution=execution, kind=Span.Kind.NODE)
    assert spans.count() == 3 and {s.name for s in spans} == {"work"}
    span_writes = [q["sql"] for q in queries.captured_queries if 'INSERT INTO "traces_span"' in q["sql"]]
    step_writes = [q["sql"] for q in queries.captured_queries if 'INSERT INTO "traces_step"' in q["sql"]]
    assert len(step_writes) == Step.objects.filter(execution=execution).count() >= 3
    # No span has a statement of its own: each rode along with its step's row.
    assert span_writes and all('INSERT INTO "traces_step"' in sql for sql in span_writes)
    for step in Step.objects.filter(execution=execution, nodes=["work"]):
        assert spans.filter(step=step.step).exists()


def test_the_span_of_a_node_whose_step_never_ends_is_written_when_the_run_stops(inline) -> None:  # type: ignore[no-untyped-def]
    execution = inline(services.execution_start(graph_name="t_fan_fail", input={}, user=None))
    assert execution.status == Execution.Status.FAILED
    spans = {s.name: s.status for s in Span.objects.filter(execution=execution, kind=Span.Kind.NODE)}
    # fan_ok ended first and waited for a step row that never came (its sibling failed).
    assert spans == {"fan_ok": Span.Status.OK, "fan_fails": Span.Status.ERROR}
