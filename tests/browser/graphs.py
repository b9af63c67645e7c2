"""A graph whose LLM answers stream into the page: it drafts (an LLM call), asks a person,
then writes the final text (another LLM call). With ``LOOPGATE_OFFLINE_TOKEN_DELAY_MS`` set,
the offline model is slow, so an answer can be watched as it grows."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from orchestrator.llm import get_chat_model


class ChattyState(TypedDict, total=False):
    topic: str
    draft: str
    decision: Any
    final: str


def write(state: ChattyState) -> dict[str, Any]:
    answer = get_chat_model("writer").invoke([HumanMessage(f"Write about {state.get('topic', '')}")])
    return {"draft": str(answer.content)}


def ask(state: ChattyState) -> dict[str, Any]:
    return {"decision": interrupt({"action": "publish", "draft": state.get("draft", "")})}


def finish(state: ChattyState) -> dict[str, Any]:
    answer = get_chat_model("writer").invoke([HumanMessage(f"Polish this: {state.get('draft', '')}")])
    return {"final": str(answer.content)}


builder = StateGraph(ChattyState)
builder.add_node("write", write)
builder.add_node("ask", ask)
builder.add_node("finish", finish)
builder.add_edge(START, "write")
builder.add_edge("write", "ask")
builder.add_edge("ask", "finish")
builder.add_edge("finish", END)
chatty = builder.compile()
