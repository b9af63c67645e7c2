"""Fixtures of the trace tests: graphs run in the test process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import registry, services
from orchestrator.models import Execution
from tests.traces.graphs import TRACE_GRAPHS


@pytest.fixture
def trace_graphs(settings: Any) -> None:
    """The built-in examples plus the trace tests' own graphs (a subgraph that interrupts)."""
    settings.LOOPGATE_GRAPHS = TRACE_GRAPHS
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def inline(monkeypatch: pytest.MonkeyPatch, trace_graphs: None) -> Callable[..., Execution]:
    """Run executions here, in the test's thread, instead of queueing them for a worker.

    ``inline(execution)`` advances it once (to its end or its next interrupt) and returns it fresh.
    """
    from orchestrator.runner import execution_advance
    from traces import services as trace_services

    monkeypatch.setattr(services, "_queue_advance", lambda _id: None)

    def run(execution: Execution) -> Execution:
        execution_advance(execution_id=execution.id)
        execution.refresh_from_db()
        return execution

    return run
