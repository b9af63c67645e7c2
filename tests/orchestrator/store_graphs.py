"""Graphs that keep long-term memory in LangGraph's Store, registered through LOOPGATE_GRAPHS
in tests/settings.py so that worker processes load them as users' graphs are loaded.

``memory`` recalls what earlier runs stored for the user through ``get_store()``, then
stores the new fact through the node's ``store`` argument; ``memory_compiled`` is the
same graph compiled by its author with an in-memory store of its own, which Loopgate
replaces with the database one.
"""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from typing_extensions import TypedDict


class MemoryState(TypedDict, total=False):
    user: str
    remember: str
    recalled: list[str]
    matching: list[str]


def recall(state: MemoryState) -> dict[str, Any]:
    store = get_store()
    namespace = ("memories", state["user"])
    recalled = sorted(item.value["text"] for item in store.search(namespace, limit=100))
    matching = sorted(item.value["text"] for item in store.search(namespace, filter={"kind": "taste"}, limit=100))
    return {"recalled": recalled, "matching": matching}


def remember(state: MemoryState, *, store: BaseStore) -> dict[str, Any]:
    if state.get("remember"):
        kind = "taste" if state["remember"].startswith("likes") else "fact"
        store.put(("memories", state["user"]), uuid.uuid4().hex, {"text": state["remember"], "kind": kind})
    return {}


builder = StateGraph(MemoryState)
builder.add_node("recall", recall)
builder.add_node("remember", remember)
builder.add_edge(START, "recall")
builder.add_edge("recall", "remember")
builder.add_edge("remember", END)

memory = builder
memory_compiled = builder.compile(store=InMemoryStore())
