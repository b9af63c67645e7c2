"""Reading a checkpoint namespace: the outer node and task of a subgraph's checkpoints."""

from __future__ import annotations

from django.test import SimpleTestCase
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from orchestrator.namespaces import outer_node, outer_task_id


class State(TypedDict, total=False):
    answer: str


def _ask(state: State) -> State:
    return {"answer": interrupt("?")}


def _nested_graph():  # type: ignore[no-untyped-def]
    """parent --outer--> middle --inner--> a node that interrupts."""
    leaf = StateGraph(State)
    leaf.add_node("ask", _ask)
    leaf.add_edge(START, "ask")
    leaf.add_edge("ask", END)
    middle = StateGraph(State)
    middle.add_node("inner", leaf.compile())
    middle.add_edge(START, "inner")
    middle.add_edge("inner", END)
    parent = StateGraph(State)
    parent.add_node("outer", middle.compile())
    parent.add_edge(START, "outer")
    parent.add_edge("outer", END)
    return parent.compile(checkpointer=InMemorySaver())


class NamespaceTests(SimpleTestCase):
    def test_the_graphs_own_namespace_has_no_outer_task(self):
        for ns in ("", None):
            self.assertEqual((outer_node(ns), outer_task_id(ns)), ("", ""))

    def test_spelled_namespaces(self):
        self.assertEqual(outer_node("node:abc-1"), "node")
        self.assertEqual(outer_task_id("node:abc-1"), "abc-1")
        self.assertEqual(outer_node("node:abc-1|child:def-2|leaf:ghi-3"), "node")
        self.assertEqual(outer_task_id("node:abc-1|child:def-2|leaf:ghi-3"), "abc-1")

    def test_namespaces_langgraph_writes_name_the_outer_node_and_its_task(self):
        graph = _nested_graph()
        config = {"configurable": {"thread_id": "t"}}
        graph.invoke({}, config)
        state = graph.get_state(config, subgraphs=True)
        [task] = state.tasks
        self.assertEqual(task.name, "outer")
        middle = task.state
        [inner] = middle.tasks
        deep_ns = inner.state.config["configurable"]["checkpoint_ns"]
        self.assertEqual(deep_ns.count("|"), 1, deep_ns)  # two levels down: "outer:<id>|inner:<id>"
        self.assertEqual(outer_node(deep_ns), "outer")
        self.assertEqual(outer_task_id(deep_ns), task.id)
        self.assertEqual(outer_task_id(middle.config["configurable"]["checkpoint_ns"]), task.id)
