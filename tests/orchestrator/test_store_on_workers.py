"""The Store inside graphs: compiled into every registered graph, and a graph run by a real Celery
worker process keeps its memory in the database across executions (threads)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import registry, services
from orchestrator.models import Execution, StoreItem
from orchestrator.store import DjangoStore, get_store
from tests.services import wait_for


@pytest.mark.django_db
def test_every_registered_graph_is_compiled_with_the_database_store() -> None:
    assert isinstance(get_store(), DjangoStore)
    for name in ("t_memory", "t_memory_compiled", "seed", "t_counter"):
        assert registry.get_graph(name).compiled.store is get_store(), name


@pytest.fixture
def worker(worker):  # type: ignore[no-untyped-def]
    return worker("store")


def run(graph: str, **input: Any) -> Execution:
    execution = services.execution_start(graph_name=graph, input=input, user=None)
    wait_for(lambda: Execution.objects.filter(id=execution.id, status__in=Execution.FINISHED).exists(), timeout=60,
             what=f"the {graph} execution")
    execution.refresh_from_db()
    assert execution.status == Execution.Status.SUCCEEDED, execution.error
    return execution


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_graph_on_a_worker_remembers_across_threads_through_get_store_and_the_store_argument(worker) -> None:  # type: ignore[no-untyped-def]
    first = run("t_memory", user="ada", remember="likes tea")
    assert first.state["recalled"] == []

    # Another execution is another LangGraph thread: only the Store carries the memory over,
    # and the author's own in-memory store was replaced by the same database one.
    second = run("t_memory_compiled", user="ada", remember="was born in 1815")
    assert second.state["recalled"] == ["likes tea"]
    third = run("t_memory", user="ada")
    assert third.state["recalled"] == ["likes tea", "was born in 1815"]
    assert third.state["matching"] == ["likes tea"]
    assert len({first.id, second.id, third.id}) == 3

    other = run("t_memory", user="grace")
    assert other.state["recalled"] == []

    items = StoreItem.objects.order_by("created_at")
    assert [(i.namespace, i.value) for i in items] == [
        ("memories.ada", {"text": "likes tea", "kind": "taste"}),
        ("memories.ada", {"text": "was born in 1815", "kind": "fact"}),
    ]
    # What the graph wrote is what the Store API reads from this process.
    assert [i.value["text"] for i in get_store().search(("memories", "ada"), filter={"kind": "fact"})] == [
        "was born in 1815"]
