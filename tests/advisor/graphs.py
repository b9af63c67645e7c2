"""Graphs for the advisor tests: each makes one of the seed document's mistakes, and one makes none.

Written as their authors would write them; nothing here knows about Loopgate. Registered with
``ADVISOR_GRAPHS`` (the fixture in tests/advisor/conftest.py) and run in the test process.
"""

from __future__ import annotations

import json
import operator
import re
from typing import Annotated, Any, List

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from orchestrator.examples import seed
from orchestrator.examples.offline_model import OfflineChatModel

# --- the seed's researcher / supervisor, with a longer run ------------------------------------------
# The seed's own code, with its stopping rule moved from two reports to eight: the plain-list
# ``reports`` channel is rewritten whole by every researcher step.

ROUNDS = 8


def long_supervisor(state: seed.AgentState) -> dict[str, Any]:
    if state["iterations"] > ROUNDS + 1 or len(state["reports"]) >= ROUNDS:
        return {"is_complete": True}
    return {"is_complete": False, "iterations": state["iterations"] + 1}


seed_long = StateGraph(seed.AgentState)
seed_long.add_node("supervisor", long_supervisor)
seed_long.add_node("researcher", seed.researcher_node)
seed_long.set_entry_point("researcher")
seed_long.add_edge("researcher", "supervisor")
seed_long.add_conditional_edges("supervisor", lambda x: "end" if x["is_complete"] else "researcher",
                                {"end": END, "researcher": "researcher"})


# --- the same loop done right: a reducer, a counter, short prompts -----------------------------------


class TidyState(TypedDict):
    task: str
    reports: Annotated[List[str], operator.add]
    iterations: int


def tidy_researcher(state: TidyState) -> dict[str, Any]:
    answer = OfflineChatModel().invoke([HumanMessage(f"Find one fact about {state['task']}.")])
    return {"reports": [f"{len(state['reports'])}: {answer.content[:40]}"], "iterations": state["iterations"] + 1}


def tidy_next(state: TidyState) -> str:
    return END if state["iterations"] >= ROUNDS else "researcher"


tidy = StateGraph(TidyState)
tidy.add_node("researcher", tidy_researcher)
tidy.add_edge(START, "researcher")
tidy.add_conditional_edges("researcher", tidy_next, ["researcher", END])


# --- a prompt of about 3,000 tokens ------------------------------------------------------------------

HANDBOOK = "Every shutdown needs the owner's written consent and a rollback plan. " * 170  # ~12,000 chars


class AskState(TypedDict, total=False):
    question: str
    answer: str


def brief_writer(state: AskState) -> dict[str, Any]:
    prompt = [SystemMessage(HANDBOOK), HumanMessage(state["question"])]
    return {"answer": OfflineChatModel().invoke(prompt).content}


long_prompt = StateGraph(AskState)
long_prompt.add_node("brief_writer", brief_writer)
long_prompt.add_edge(START, "brief_writer")
long_prompt.add_edge("brief_writer", END)


# --- a loop with no guard: it runs until the step limit stops it ---------------------------------------


class PollState(TypedDict, total=False):
    ready: bool
    polls: int


def poll(state: PollState) -> dict[str, Any]:
    return {"polls": state.get("polls", 0) + 1, "ready": False}  # the service never becomes ready


def check(state: PollState) -> dict[str, Any]:
    return {}


endless = StateGraph(PollState)
endless.add_node("poll", poll)
endless.add_node("check", check)
endless.add_edge(START, "poll")
endless.add_edge("poll", "check")
endless.add_conditional_edges("check", lambda s: END if s.get("ready") else "poll", ["poll", END])


# --- a side effect before an interrupt in the same node -----------------------------------------------

SENT: list[dict[str, Any]] = []  # what the "mail server" received, to count the duplicate


@tool
def send_email(to: str, subject: str) -> str:
    """Send an email (a side effect: it cannot be taken back)."""
    SENT.append({"to": to, "subject": subject})
    return f"sent to {to}"


class MailState(TypedDict, total=False):
    to: str
    approved: Any


def notify_then_ask(state: MailState) -> dict[str, Any]:
    send_email.invoke({"to": state["to"], "subject": "Shutdown planned"})
    answer = interrupt({"question": f"Shut down after notifying {state['to']}?"})
    return {"approved": answer}


notify_first = StateGraph(MailState)
notify_first.add_node("notify_then_ask", notify_then_ask)
notify_first.add_edge(START, "notify_then_ask")
notify_first.add_edge("notify_then_ask", END)


# --- free text parsed where structured output exists ---------------------------------------------------


class PlanState(TypedDict, total=False):
    goal: str
    draft: str
    steps: list[str]


def planner(state: PlanState) -> dict[str, Any]:
    reply = OfflineChatModel().invoke([HumanMessage(f"Plan the steps for: {state['goal']}")])
    return {"draft": reply.content}


def parse_plan(state: PlanState) -> dict[str, Any]:
    text = state["draft"]
    match = re.search(r"\{.*\}", text, re.S)
    steps = json.loads(match.group(0))["steps"] if match else [line for line in text.splitlines() if line]
    return {"steps": steps}


free_text = StateGraph(PlanState)
free_text.add_node("planner", planner)
free_text.add_node("parse_plan", parse_plan)
free_text.add_edge(START, "planner")
free_text.add_edge("planner", "parse_plan")
free_text.add_edge("parse_plan", END)


# --- two mistakes at once, for the pages (registered in tests/settings.py as t_advisor) ----------------


def reading_researcher(state: seed.AgentState) -> dict[str, Any]:
    OfflineChatModel().invoke([SystemMessage(HANDBOOK), HumanMessage(f"One finding about: {state['task']}")])
    return seed.researcher_node(state)


demo = StateGraph(seed.AgentState)
demo.add_node("supervisor", long_supervisor)
demo.add_node("researcher", reading_researcher)
demo.set_entry_point("researcher")
demo.add_edge("researcher", "supervisor")
demo.add_conditional_edges("supervisor", lambda x: "end" if x["is_complete"] else "researcher",
                           {"end": END, "researcher": "researcher"})


ADVISOR_GRAPHS = {
    "a_seed_long": "tests.advisor.graphs:seed_long",
    "a_tidy": "tests.advisor.graphs:tidy",
    "a_long_prompt": "tests.advisor.graphs:long_prompt",
    "a_endless": "tests.advisor.graphs:endless",
    "a_notify_first": "tests.advisor.graphs:notify_first",
    "a_free_text": "tests.advisor.graphs:free_text",
}
