"""The graphs the bench scripts run: the seed graph's nodes, stretched, and one that asks for approval.

Registered by the scripts through ``LOOPGATE_GRAPHS`` (``bench/graphs.py:loop``),
the way a user's graphs are.
"""

from __future__ import annotations

import time
from typing import Any, TypedDict

from langgraph.graph import END, StateGraph
from langgraph.types import interrupt


class AgentState(TypedDict):
    task: str
    reports: list[str]
    iterations: int
    is_complete: bool


START = {"task": "Survey durable execution engines for agent graphs", "reports": [], "iterations": 0, "is_complete": False}


def seed_builder(*, reports: int, grow: bool = False, pause: float = 0.0) -> StateGraph:
    """orchestrator/examples/seed.py's nodes and edges, ending after ``reports`` findings (2: the seed itself).

    201 findings: 200 supervisor iterations, 402 super-steps. ``grow`` adds a
    2 KB string to the state at each researcher step; ``pause`` makes each
    node take that long (seconds), as a model call would.
    """

    def supervisor_node(state: AgentState) -> dict[str, Any]:
        time.sleep(pause)
        if state["iterations"] > reports + 1 or len(state["reports"]) >= reports:
            return {"is_complete": True}
        return {"is_complete": False, "iterations": state["iterations"] + 1}

    def researcher_node(state: AgentState) -> dict[str, Any]:
        time.sleep(pause)
        new_data = f"Research finding index: {len(state['reports'])}"
        if grow:
            new_data += " " + "x" * 2048
        return {"reports": state["reports"] + [new_data]}

    workflow = StateGraph(AgentState)
    workflow.add_node("supervisor", supervisor_node)
    workflow.add_node("researcher", researcher_node)
    workflow.set_entry_point("researcher")
    workflow.add_edge("researcher", "supervisor")
    workflow.add_conditional_edges(
        "supervisor", lambda x: "end" if x["is_complete"] else "researcher", {"end": END, "researcher": "researcher"}
    )
    return workflow


class ReviewState(TypedDict):
    task: str
    approved: Any


def _ask(state: ReviewState) -> dict[str, Any]:
    return {"approved": interrupt({"question": f"Go ahead with {state['task']}?"})}


def _act(state: ReviewState) -> dict[str, Any]:
    return {"task": state["task"] + " (done)"}


def review_builder() -> StateGraph:
    """ask (a plain interrupt: one approval) -> act."""
    workflow = StateGraph(ReviewState)
    workflow.add_node("ask", _ask)
    workflow.add_node("act", _act)
    workflow.set_entry_point("ask")
    workflow.add_edge("ask", "act")
    workflow.add_edge("act", END)
    return workflow


loop = seed_builder(reports=201)
grow = seed_builder(reports=201, grow=True)
seed = seed_builder(reports=2)
review = review_builder()
paced = seed_builder(reports=26, pause=0.1)  # 52 steps, 0.1 s each: bench/live.py
