"""Fixtures of the advisor tests: its graphs, run in the test's thread through the real runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator import registry, services
from orchestrator.models import Execution
from tests.advisor.graphs import ADVISOR_GRAPHS


@pytest.fixture
def advisor_graphs(settings: Any) -> Iterator[None]:
    """The built-in examples plus the advisor's own graphs."""
    settings.LOOPGATE_GRAPHS = json.dumps({"graphs": ADVISOR_GRAPHS})
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, advisor_graphs: None) -> Callable[..., Execution]:
    """``run(graph, input)`` starts an execution and advances it here, to its end or its first interrupt;
    ``run.again(execution)`` advances it once more (after a decision)."""
    from orchestrator.runner import execution_advance

    monkeypatch.setattr(services, "_queue_advance", lambda _id: None)

    def advance(execution: Execution) -> Execution:
        execution_advance(execution_id=execution.id)
        execution.refresh_from_db()
        return execution

    def start(graph: str, input: dict[str, Any], **options: Any) -> Execution:
        return advance(services.execution_start(graph_name=graph, input=input, user=None, **options))

    start.again = advance  # type: ignore[attr-defined]
    return start
