"""Graphs the LangGraph-compatible API tests run, written as any LangGraph user would: nothing
here knows Loopgate, so ``langgraph dev`` serves the same file (``langgraph.json`` beside it)."""

from __future__ import annotations

import operator
import time
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class ReviewState(TypedDict, total=False):
    topic: str
    draft: str
    decision: str
    published: bool
    log: Annotated[list[str], operator.add]


def write(state: ReviewState) -> dict[str, Any]:
    return {"draft": f"A post about {state.get('topic', 'nothing')}", "log": ["write"]}


def review(state: ReviewState) -> dict[str, Any]:
    answer = interrupt({
        "action": "publish",
        "description": "Publish this draft?",
        "draft": state["draft"],
        "allowed_decisions": ["approve", "edit", "reject"],
        "args_schema": {"type": "object", "properties": {"draft": {"type": "string", "minLength": 3}},
                        "required": ["draft"]},
    })
    update: dict[str, Any] = {"decision": answer["type"], "log": ["review"]}
    if answer["type"] == "edit":
        update["draft"] = answer["args"]["draft"]
    return update


def publish(state: ReviewState) -> dict[str, Any]:
    return {"published": state.get("decision") != "reject", "log": ["publish"]}


review_builder = StateGraph(ReviewState)
review_builder.add_node("write", write)
review_builder.add_node("review", review)
review_builder.add_node("publish", publish)
review_builder.add_edge(START, "write")
review_builder.add_edge("write", "review")
review_builder.add_edge("review", "publish")
review_builder.add_edge("publish", END)
review_graph = review_builder.compile()


class EchoState(TypedDict, total=False):
    text: str
    steps: Annotated[list[str], operator.add]


def shout(state: EchoState) -> dict[str, Any]:
    return {"text": state.get("text", "").upper(), "steps": ["shout"]}


def count(state: EchoState) -> dict[str, Any]:
    return {"steps": [f"count:{len(state.get('steps', []))}"]}


echo_builder = StateGraph(EchoState)
echo_builder.add_node("shout", shout)
echo_builder.add_node("count", count)
echo_builder.add_edge(START, "shout")
echo_builder.add_edge("shout", "count")
echo_builder.add_edge("count", END)
echo_graph = echo_builder.compile()


class SlowState(TypedDict, total=False):
    n: int
    limit: int


def tick(state: SlowState) -> dict[str, Any]:
    time.sleep(0.3)
    return {"n": state.get("n", 0) + 1}


def _again(state: SlowState) -> str:
    return "tick" if state.get("n", 0) < state.get("limit", 3) else END


slow_builder = StateGraph(SlowState)
slow_builder.add_node("tick", tick)
slow_builder.add_edge(START, "tick")
slow_builder.add_conditional_edges("tick", _again, ["tick", END])
slow_graph = slow_builder.compile()
