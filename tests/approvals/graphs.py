"""Graphs for the approvals tests, one per payload format, registered through
LOOPGATE_GRAPHS in tests/settings.py so worker processes load them as users' graphs.

Written exactly as their authors would write them for LangChain, Agent Inbox or
plain LangGraph: nothing here knows about Loopgate. Node runs are logged to
LOOPGATE_TEST_RUNLOG (tests.orchestrator.graphs.log_run) so tests count how often a graph resumed.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from tests.orchestrator.graphs import log_run

EMAIL = {"to": "alice@example.com", "subject": "Q3 report", "body": "The numbers are attached."}


class MailingModel(BaseChatModel):
    """A deterministic tool-calling chat model: asks to send ``EMAIL`` once, then reports the tool's answer."""

    @property
    def _llm_type(self) -> str:
        return "scripted-mailer"

    def bind_tools(self, tools: Any, **kwargs: Any) -> MailingModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:
            message = AIMessage(f"Done: {results[-1].content}")
        else:
            message = AIMessage("", tool_calls=[{"name": "send_email", "args": dict(EMAIL), "id": "call_mail_1"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email."""
    return f"sent to {to}: {subject} ({len(body)} characters)"


hitl_agent = create_agent(
    MailingModel(), tools=[send_email], middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True})]
)
hitl_per_call = create_agent(
    MailingModel(), tools=[send_email],
    middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True}, interrupt_mode="per_call")],
)


# --- Agent Inbox: two questions in a row, each a HumanInterrupt list ------------------------------


class InboxState(TypedDict, total=False):
    topic: str
    responses: Annotated[list[Any], operator.add]


def _ask(action: str, args: dict[str, Any], description: str) -> Any:
    request = {
        "action_request": {"action": action, "args": args},
        "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True},
        "description": description,
    }
    return interrupt([request])[0]


def draft(state: InboxState, config: RunnableConfig) -> dict[str, Any]:
    response = _ask("publish_post", {"title": state.get("topic", "Hello")}, "Publish this post?")
    log_run(config, "draft", response["type"])
    return {"responses": [response]}


def follow_up(state: InboxState, config: RunnableConfig) -> dict[str, Any]:
    response = _ask("ask_reader", {"question": "What should the next post be about?"}, "Answer the agent.")
    log_run(config, "follow_up", response["type"])
    return {"responses": [response]}


inbox = StateGraph(InboxState)
inbox.add_node("draft", draft)
inbox.add_node("follow_up", follow_up)
inbox.add_edge(START, "draft")
inbox.add_edge("draft", "follow_up")
inbox.add_edge("follow_up", END)


# --- a plain interrupt("ok?") ------------------------------------------------------------------------


class PlainState(TypedDict, total=False):
    answer: Any
    done: bool


def ask(state: PlainState, config: RunnableConfig) -> dict[str, Any]:
    log_run(config, "ask")
    return {"answer": interrupt("ok?")}


def finish(state: PlainState, config: RunnableConfig) -> dict[str, Any]:
    log_run(config, "finish")
    return {"done": True}


plain = StateGraph(PlainState)
plain.add_node("ask", ask)
plain.add_node("finish", finish)
plain.add_edge(START, "ask")
plain.add_edge("ask", "finish")
plain.add_edge("finish", END)


# --- parallel branches, each interrupting: several pending interrupts at once ------------------------


class BranchState(TypedDict, total=False):
    answers: Annotated[list[Any], operator.add]
    joined: bool


def left(state: BranchState, config: RunnableConfig) -> dict[str, Any]:
    log_run(config, "left")
    return {"answers": [["left", interrupt("Go left?")]]}


def right(state: BranchState, config: RunnableConfig) -> dict[str, Any]:
    log_run(config, "right")
    return {"answers": [["right", interrupt("Go right?")]]}


def join(state: BranchState, config: RunnableConfig) -> dict[str, Any]:
    log_run(config, "join")
    return {"joined": True}


branches = StateGraph(BranchState)
branches.add_node("left", left)
branches.add_node("right", right)
branches.add_node("join", join)
branches.add_edge(START, "left")
branches.add_edge(START, "right")
branches.add_edge(["left", "right"], "join")
branches.add_edge("join", END)
