"""Graphs the LangGraph-compatible API tests run, written as any LangGraph user would: nothing
here knows Loopgate, so ``langgraph dev`` serves the same file (``langgraph.json`` beside it)."""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Iterator
from typing import Annotated, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
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
    if state.get("text") == "fail":
        raise RuntimeError("asked to fail")
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


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]


def chat(state: ChatState) -> dict[str, Any]:
    """A streaming chat model (LangChain's own fake one: a token per word and space)."""
    get_stream_writer()({"progress": "thinking"})
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hello there you", id="answer-1")]))
    return {"messages": [model.invoke(state.get("messages", []))]}


chat_builder = StateGraph(ChatState)
chat_builder.add_node("chat", chat)
chat_builder.add_edge(START, "chat")
chat_builder.add_edge("chat", END)
chat_graph = chat_builder.compile()


def inner_step(state: EchoState) -> dict[str, Any]:
    return {"steps": ["inner"]}


inner_builder = StateGraph(EchoState)
inner_builder.add_node("inner_step", inner_step)
inner_builder.add_edge(START, "inner_step")
inner_builder.add_edge("inner_step", END)

nested_builder = StateGraph(EchoState)
nested_builder.add_node("shout", shout)
nested_builder.add_node("inner", inner_builder.compile())
nested_builder.add_edge(START, "shout")
nested_builder.add_edge("shout", "inner")
nested_builder.add_edge("inner", END)
nested_graph = nested_builder.compile()
class ScriptedChatModel(BaseChatModel):
    """A chat model that streams a scripted reply a word at a time, as a provider streams tokens.

    ``script`` is formatted with ``{question}``, the last human message. The short pause between
    words is what a provider's latency looks like: a browser watching the stream sees the reply grow.
    """

    script: str
    pause: float = 0.08

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _reply(self, messages: list[BaseMessage]) -> str:
        humans = [m for m in messages if isinstance(m, HumanMessage)]
        return self.script.format(question=str(humans[-1].content).strip() if humans else "nothing")

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._reply(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for word in re.findall(r"\S+\s*", self._reply(messages)):
            time.sleep(self.pause)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk


class NoteState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


drafter = ScriptedChatModel(script="You wrote: “{question}”. I drafted a note for the team: let us meet at noon to settle it.")
closer = ScriptedChatModel(script="Sent. The team has your note about “{question}” and meets at noon.")


def draft(state: NoteState) -> dict[str, Any]:
    return {"messages": [drafter.invoke(state["messages"])]}


def confirm(state: NoteState) -> dict[str, Any]:
    """Asks in Agent Inbox's format (a ``HumanInterrupt`` list), answered with ``HumanResponse``s."""
    note = str(state["messages"][-1].content)
    [answer] = interrupt([{
        "action_request": {"action": "send_note", "args": {"note": note}},
        "config": {"allow_accept": True, "allow_ignore": True, "allow_respond": False, "allow_edit": False},
        "description": "Send this note to the team?",
    }])
    if answer["type"] == "accept":
        return {"messages": [closer.invoke(state["messages"])]}
    return {"messages": [AIMessage(content="Nothing was sent.")]}


note_builder = StateGraph(NoteState)
note_builder.add_node("draft", draft)
note_builder.add_node("confirm", confirm)
note_builder.add_edge(START, "draft")
note_builder.add_edge("draft", "confirm")
note_builder.add_edge("confirm", END)
note_graph = note_builder.compile()
