"""Graphs for the runner tests, registered through LOOPGATE_GRAPHS in tests/settings.py
so that worker processes load them exactly as users' graphs are loaded.

Every node run appends a line to the file named by LOOPGATE_TEST_RUNLOG (when
set), so tests count node runs independently of Loopgate's own trace.
"""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, Any, Literal

from langchain_core.runnables import RunnableConfig
from langchain_core.messages import AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


def log_run(config: RunnableConfig, node: str, extra: Any = "") -> None:
    path = os.environ.get("LOOPGATE_TEST_RUNLOG")
    if not path:
        return
    thread = config["configurable"]["thread_id"]
    step = config.get("metadata", {}).get("langgraph_step")
    with open(path, "a") as fh:  # O_APPEND: whole lines, even from several processes
        fh.write(f"{thread} {node} {step} {os.getpid()} {extra}\n")


class CounterState(TypedDict, total=False):
    n: int
    target: int
    sleep: float
    log: Annotated[list, operator.add]


def work(state: CounterState, config: RunnableConfig) -> dict[str, Any]:
    log_run(config, "work", state.get("n", 0))
    if state.get("sleep"):
        time.sleep(state["sleep"])
    n = state.get("n", 0) + 1
    return {"n": n, "log": [f"work {n}"]}


def _again(state: CounterState) -> str:
    return "work" if state.get("n", 0) < state.get("target", 3) else END


counter = StateGraph(CounterState)
counter.add_node("work", work)
counter.add_edge(START, "work")
counter.add_conditional_edges("work", _again, ["work", END])


def spin(state: CounterState, config: RunnableConfig) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1}


forever = StateGraph(CounterState)
forever.add_node("spin", spin)
forever.add_edge(START, "spin")
forever.add_edge("spin", "spin")


def explode(state: CounterState, config: RunnableConfig) -> dict[str, Any]:
    raise ValueError("the reactor overheated")


boom = StateGraph(CounterState)
boom.add_node("work", work)
boom.add_node("explode", explode)
boom.add_edge(START, "work")
boom.add_edge("work", "explode")
boom.add_edge("explode", END)


def act(state: CounterState, config: RunnableConfig) -> dict[str, Any]:
    log_run(config, "act")
    return {"log": ["acted"]}


guarded = StateGraph(CounterState)
guarded.add_node("work", work)
guarded.add_node("act", act)
guarded.add_edge(START, "work")
guarded.add_edge("work", "act")
guarded.add_edge("act", END)
guarded_compiled = guarded.compile(interrupt_before=["act"])
# The same graph held after "work" instead: a reviewer looks at what it did before "act" runs.
guarded_after = guarded.compile(interrupt_after=["work"])


def ask(state: CounterState, config: RunnableConfig) -> dict[str, Any]:
    from langgraph.types import interrupt

    answer = interrupt("ok?")
    log_run(config, "ask")
    return {"log": [f"asked: {answer}"]}


def side(state: CounterState, config: RunnableConfig) -> dict[str, Any]:
    log_run(config, "side")
    return {"log": ["side"]}


parallel = StateGraph(CounterState)
parallel.add_node("work", work)
parallel.add_node("ask", ask)
parallel.add_node("side", side)
parallel.add_edge(START, "work")
parallel.add_edge("work", "ask")
parallel.add_edge("work", "side")
parallel.add_edge("ask", END)
parallel.add_edge("side", END)


class Target(TypedDict):
    host: str
    port: int


class TypedState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    mode: Literal["fast", "careful"]
    target: Target
    retries: list[int]
    log: Annotated[list, operator.add]


def typed_node(state: TypedState, config: RunnableConfig) -> dict[str, Any]:
    return {"log": [f"{state.get('mode')} {state.get('target')}"]}


typed = StateGraph(TypedState)
typed.add_node("typed_node", typed_node)
typed.add_edge(START, "typed_node")
typed.add_edge("typed_node", END)
