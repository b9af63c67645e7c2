"""Graphs of the trace tests: a subgraph that waits for a person, and a node that asks before it acts.

Registered with ``override_settings(LOOPGATE_GRAPHS=...)`` (see ``TRACE_GRAPHS``) and run in the test
process, so they need no worker of their own.
"""

from __future__ import annotations

import json

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class NestedState(TypedDict, total=False):
    x: int
    answer: str


def inner_add(state: NestedState) -> dict:
    return {"x": state.get("x", 0) + 1}


def inner_ask(state: NestedState) -> dict:
    answer = interrupt({"question": "Is x right?", "x": state["x"]})
    return {"answer": f"{answer} (x was {state['x']})"}


child = StateGraph(NestedState)
child.add_node("inner_add", inner_add)
child.add_node("inner_ask", inner_ask)
child.add_edge(START, "inner_add")
child.add_edge("inner_add", "inner_ask")
child.add_edge("inner_ask", END)


def outer(state: NestedState) -> dict:
    return {"x": state.get("x", 0) + 10}


nested = StateGraph(NestedState)
nested.add_node("outer", outer)
nested.add_node("child", child.compile())
nested.add_edge(START, "outer")
nested.add_edge("outer", "child")
nested.add_edge("child", END)

TRACE_GRAPHS = json.dumps(
    {"graphs": {"t_counter": "tests.graphs:counter", "t_boom": "tests.graphs:boom",
                "t_nested": "tests.traces.graphs:nested"}}
)
