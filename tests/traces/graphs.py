"""Graphs of the trace tests: a subgraph that waits for a person, a node that asks before it acts,
and a LangChain agent (its own graph) used as a node, calling the offline model and a tool.

Registered with ``override_settings(LOOPGATE_GRAPHS=...)`` (see ``TRACE_GRAPHS``) and run in the test
process, so they need no worker of their own.
"""

from __future__ import annotations

import json
from typing import Annotated

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict

from orchestrator.examples.offline_model import OfflineChatModel


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


@tool
def lookup(term: str) -> str:
    """Look a term up in the glossary."""
    return f"{term}: a unit of work the graph records."


class AgentNodeState(TypedDict, total=False):
    topic: str
    messages: Annotated[list, add_messages]


def prepare(state: AgentNodeState) -> dict:
    # The offline model calls a bound tool the last user message names: one lookup, then an answer.
    return {"messages": [HumanMessage(f"Please lookup {state['topic']}.")]}


# Outer steps: 1 prepare, 2 agent. Inside the agent: 1 model, 2 tools, 3 model, so
# the subgraph's own step numbers collide with (and run past) the outer ones.
agent_node = StateGraph(AgentNodeState)
agent_node.add_node("prepare", prepare)
agent_node.add_node("agent", create_agent(OfflineChatModel(), tools=[lookup]))
agent_node.add_edge(START, "prepare")
agent_node.add_edge("prepare", "agent")
agent_node.add_edge("agent", END)

class FanState(TypedDict, total=False):
    done: Annotated[list[str], lambda a, b: (a or []) + (b or [])]


def fan_ok(state: FanState) -> dict:
    return {"done": ["ok"]}


def fan_fails(state: FanState) -> dict:
    import time

    time.sleep(0.3)  # its sibling has ended (and its span waits for the step's row) before this fails
    raise RuntimeError("the sibling failed")


# Two nodes of one step, one of which fails: the step gets no checkpoint, so no step row.
fan_fail = StateGraph(FanState)
fan_fail.add_node("fan_ok", fan_ok)
fan_fail.add_node("fan_fails", fan_fails)
fan_fail.add_edge(START, "fan_ok")
fan_fail.add_edge(START, "fan_fails")
fan_fail.add_edge("fan_ok", END)
fan_fail.add_edge("fan_fails", END)


TRACE_GRAPHS = json.dumps(
    {"graphs": {"t_counter": "tests.orchestrator.graphs:counter", "t_boom": "tests.orchestrator.graphs:boom",
                "t_nested": "tests.traces.graphs:nested", "t_agent_node": "tests.traces.graphs:agent_node",
                "t_fan_fail": "tests.traces.graphs:fan_fail"}}
)
