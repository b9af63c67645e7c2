"""Which nodes are human gates (orchestrator/gates.py): read from a graph's code, its breakpoints, its
settings and its past runs, and treated as gates when in doubt."""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings

from orchestrator import gates, registry
from tests.factories import fixture_execution

GATED = '''
"""Gates of every kind."""
from __future__ import annotations

from typing_extensions import TypedDict
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph import types
from langgraph.types import interrupt as ask_a_person


class State(TypedDict, total=False):
    x: int


def plain(state: State) -> dict:
    return {"x": 1}


def _confirm(what: str) -> bool:
    return ask_a_person(what) == "yes"


def through_a_helper(state: State) -> dict:
    return {"x": 2 if _confirm("go?") else 0}


def through_the_module(state: State) -> dict:
    return {"x": types.interrupt("go?")}


def declared(state: State) -> dict:
    return {"x": 3}


LOOPGATE_GATES = ["declared"]

builder = StateGraph(State)
builder.add_node("plain", plain)
builder.add_node("through_a_helper", through_a_helper)
builder.add_node("through_the_module", through_the_module)
builder.add_node("lambda_node", RunnableLambda(lambda state: {"x": 4}))
builder.add_node("declared", declared)
builder.add_edge(START, "plain")
builder.add_edge("plain", "through_a_helper")
builder.add_edge("through_a_helper", "through_the_module")
builder.add_edge("through_the_module", "lambda_node")
builder.add_edge("lambda_node", "declared")
builder.add_edge("declared", END)
graph = builder.compile(interrupt_after=["plain"])
'''


@pytest.fixture
def graph_file() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="loopgate-gates-"))
    path = directory / "gated.py"
    path.write_text(textwrap.dedent(GATED))
    return path


def load(graphs: dict) -> registry.GraphEntry:
    with override_settings(LOOPGATE_GRAPHS=json.dumps({"graphs": graphs})):
        registry.reset()
        try:
            entries = {entry.name: entry for entry in registry.all_entries()}
        finally:
            registry.reset()
    return entries["g"]


class GateReasonsTests:
    def test_every_kind_of_gate_is_found_and_plain_nodes_are_not(self, graph_file, db) -> None:  # type: ignore[no-untyped-def]
        entry = load({"g": f"{graph_file}:graph"})
        assert entry.error is None, entry.error
        reasons = gates.gate_reasons(entry.source_graph, graph_name="g", declared=entry.declared_gates)
        assert reasons["plain"] == "a breakpoint stops the graph after it"
        assert "interrupt" in reasons["through_a_helper"]
        assert "interrupt" in reasons["through_the_module"]
        assert reasons["declared"] == "the graph's settings name it a gate"
        assert "lambda_node" not in reasons

    def test_a_node_whose_code_cannot_be_read_is_a_gate(self, db) -> None:  # type: ignore[no-untyped-def]
        from langgraph.graph import END, START, StateGraph
        from typing_extensions import TypedDict

        class State(TypedDict, total=False):
            x: int

        class Opaque:
            def __call__(self, state: State) -> dict:
                return {"x": 1}

        builder = StateGraph(State)
        builder.add_node("opaque", Opaque())
        builder.add_edge(START, "opaque")
        builder.add_edge("opaque", END)
        compiled = builder.compile()
        compiled.nodes["opaque"].bound = object()  # no function, no steps: nothing to read
        assert gates.gate_reasons(compiled) == {"opaque": "its code cannot be read, so Loopgate treats it as one"}

    def test_the_examples_gates_are_their_asking_nodes(self, db) -> None:  # type: ignore[no-untyped-def]
        registry.reset()
        assert set(registry.get_graph("finops").gates()) == {"await_approval"}
        assert registry.get_graph("seed").gates() == {}
        assert set(registry.get_graph("t_hitl_agent").gates()) == {"HumanInTheLoopMiddleware.after_model", "tools"}
        assert registry.get_graph("t_guarded").gates() == {"act": "a breakpoint stops the graph before it"}

    def test_a_node_seen_asking_at_run_time_is_a_gate(self, graph_file, db) -> None:  # type: ignore[no-untyped-def]
        from approvals.models import Approval
        from orchestrator.models import Execution

        entry = registry.get_graph("seed")
        assert "researcher" not in entry.gates()
        execution = fixture_execution(graph_name="seed")
        Approval.objects.create(execution=execution, interrupt_id="i1", node="researcher")
        assert entry.gates()["researcher"] == "it stopped for a person in an earlier run"


class DeclaredGatesTests:
    def test_langgraph_json_may_name_gates_beside_the_path(self, graph_file, db) -> None:  # type: ignore[no-untyped-def]
        entry = load({"g": {"path": f"{graph_file}:graph", "gates": ["lambda_node"]}})
        assert entry.declared_gates == ["declared", "lambda_node"]

    def test_a_gate_that_is_not_a_node_breaks_the_entry_with_a_reason(self, graph_file, db) -> None:  # type: ignore[no-untyped-def]
        entry = load({"g": {"path": f"{graph_file}:graph", "gates": ["nope"]}})
        assert entry.error is not None and "nope" in entry.error and "plain" in entry.error

    def test_gates_must_be_a_list_of_names(self, graph_file, db) -> None:  # type: ignore[no-untyped-def]
        entry = load({"g": {"path": f"{graph_file}:graph", "gates": "declared"}})
        assert entry.error is not None and "list of node names" in entry.error
