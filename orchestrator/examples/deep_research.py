"""A deep-research team: a Supervisor, a Search agent and a Synthesizer.

The supervisor reads the research notes gathered so far and answers CONTINUE
(with the next query) or DONE; the search agent calls a ``search`` tool over a
small built-in corpus and writes one note per round; once the supervisor judges
the research sufficient — or ``max_iterations`` rounds have run, a hard guard —
the synthesizer writes the report. Every agent is a chat-model call, so the
trace shows the conversation, the tool calls and the tokens each one spent.
With no LLM configured it runs on Loopgate's deterministic offline model.

Input: ``task`` (the research question) and ``max_iterations`` (search rounds
allowed, 1–10, default 3). Output: ``notes`` and ``report``.
"""

# No ``from __future__ import annotations`` here: LangGraph and pydantic read the
# state classes' annotations at runtime (reducers in ``Annotated``), and plain
# annotations keep that independent of how they resolve module globals.

import operator
import re
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from typing_extensions import Required, TypedDict

from orchestrator.llm import get_chat_model
from orchestrator.router import SemanticRouter

DEFAULT_MAX_ITERATIONS = 3
# Whatever the input asks for: each round is four steps (supervisor, search,
# tools, search), so ten rounds stay inside the step limit below.
MAX_ITERATIONS_CAP = 10
LOOPGATE_RECURSION_LIMIT = 4 * MAX_ITERATIONS_CAP + 10

EXAMPLE_INPUT = {"task": "Compare durable execution options for LangGraph agents", "max_iterations": 3}

STOP_WORDS = frozenset(
    "a an and are as at be by for from how in is it of on or the to with what which who after options "
    "compare".split()
)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP_WORDS}


# The corpus the simulated search tool looks in: short, stable, offline.
# (source, title, text, keywords)
CORPUS: tuple[tuple[str, str, str, frozenset[str]], ...] = tuple(
    (source, title, text, frozenset(_words(keywords)))
    for source, title, text, keywords in (
        (
            "langgraph-docs/persistence",
            "LangGraph checkpointers",
            "A checkpointer saves the graph state as a checkpoint after every super-step, keyed by a thread id. "
            "The saved history is what lets a run pause, resume, be inspected and be forked.",
            "checkpoint checkpointer checkpointed persistence persisted state thread saver history durable",
        ),
        (
            "langgraph-docs/persistence",
            "PostgresSaver",
            "The langgraph-checkpoint-postgres package stores checkpoints in PostgreSQL, writing each channel "
            "value once per version. It suits production: many workers can share one database.",
            "postgres postgresql checkpoint persisted persistence production database workers durable state",
        ),
        (
            "langgraph-docs/persistence",
            "SqliteSaver and InMemorySaver",
            "SqliteSaver keeps checkpoints in one local file, good for a single process; InMemorySaver keeps "
            "them in memory and loses them on restart, so it is for tests and notebooks.",
            "sqlite memory inmemorysaver local tests checkpoint persistence state single process",
        ),
        (
            "langgraph-docs/durable-execution",
            "Durability modes",
            "LangGraph's durability setting chooses when checkpoints are written: 'exit' only at the end, "
            "'async' while the next step runs, 'sync' before the next step starts, the safest and slowest.",
            "durability durable execution sync async exit crash crashes recovery trade-offs cost performance",
        ),
        (
            "langgraph-docs/durable-execution",
            "Resuming after a failure",
            "After a crash a run resumes from its last checkpoint with the same thread id; completed steps are "
            "not re-run, but the interrupted node starts again from its beginning, so side effects there should "
            "be idempotent or wrapped in tasks.",
            "crash crashes failure recovery resume resuming retries retry idempotent tasks durable execution",
        ),
        (
            "langgraph-docs/interrupts",
            "Human-in-the-loop interrupts",
            "interrupt() inside a node pauses the run and saves its state; the run continues when it is invoked "
            "again with Command(resume=...). Interrupts need a checkpointer, and may wait for days.",
            "human loop interrupts interrupt approvals approval pause resume command review",
        ),
        (
            "langchain-docs/platform",
            "LangGraph Platform",
            "LangChain's managed deployment runs graphs behind an API with its own task queue, persistence "
            "and human-in-the-loop endpoints, hosted or self-hosted; it is a service to operate or buy.",
            "managed platforms platform deployment hosted server queue cost service engines",
        ),
        (
            "temporal-docs/workflows",
            "Temporal",
            "Temporal is a general durable execution engine: a workflow's event history is replayed to rebuild "
            "its state and activities are retried. Agents can run LLM calls as activities, at the cost of a "
            "separate cluster and a second programming model.",
            "temporal external workflow engines engine durable execution retries activities replay cost "
            "trade-offs",
        ),
        (
            "loopgate/architecture",
            "Celery workers with a database checkpointer",
            "Ordinary task-queue workers can advance graphs from a database checkpointer: the database is the "
            "source of truth, so a lost worker or message only delays a run. Storage grows with the history; "
            "plain list channels are rewritten at every step.",
            "celery workers queue database checkpointer operational cost storage trade-offs recovery self-hosted",
        ),
    )
)

@tool
def search(query: str) -> str:
    """Search the research corpus; returns up to two findings as "[source] Title: text" lines."""
    wanted = _words(query)
    # Score by shared keywords; ties keep corpus order, so results never vary.
    scored = [
        (len(wanted & (keywords | _words(title))), index)
        for index, (_, title, _, keywords) in enumerate(CORPUS)
    ]
    ranked = sorted(scored, key=lambda item: (-item[0], item[1]))
    top_score = ranked[0][0]
    if top_score == 0:
        return "No results."
    # A runner-up only when it matches more than half as well: words every
    # document shares ("durable", "langgraph") must not drag in noise.
    best = [index for score, index in ranked[:2] if score * 2 > top_score]
    return "\n".join(f"[{CORPUS[i][0]}] {CORPUS[i][1]}: {CORPUS[i][2]}" for i in best)


TOOLS = [search]

SUPERVISOR_PROMPT = (
    "You are the supervisor of a research team. Read the task and the research notes gathered so far and "
    "decide whether they are enough to write a good report.\n"
    "Answer DONE on the first line if they are. Otherwise answer CONTINUE on the first line and, on the "
    "second, 'Next query: ' followed by the one question the search agent should research next (an aspect "
    "the notes do not cover yet)."
)
SEARCH_PROMPT = (
    "You are the search agent of a research team. Call the search tool once with a focused query, then write "
    "one research note of two or three sentences from the results, citing each source in parentheses. Use only "
    "what the results say."
)
SYNTHESIZER_PROMPT = (
    "You are the synthesizer of a research team: write the final report in Markdown from the task and the "
    "numbered research notes — a title, a short summary, the findings with their sources, and a "
    "recommendation. Do not add claims the notes do not support."
)


class ResearchInput(TypedDict, total=False):
    task: Required[str]
    max_iterations: int


class ResearchState(TypedDict, total=False):
    task: str
    max_iterations: int
    # The team's conversation: nodes return only their new messages and add_messages appends them
    # (a checkpoint still saves the whole list whenever it grows; the trace shows those bytes).
    messages: Annotated[list[AnyMessage], add_messages]
    notes: Annotated[list[str], operator.add]
    iterations: int
    next_query: str
    decision: str  # "continue" or "done"
    stopped_by: str  # "supervisor" or "max_iterations"
    report: str


def max_iterations_of(state: ResearchState) -> int:
    value = state.get("max_iterations")
    if isinstance(value, bool) or not isinstance(value, int):
        return DEFAULT_MAX_ITERATIONS
    return min(max(value, 1), MAX_ITERATIONS_CAP)


def _numbered(notes: list[str]) -> str:
    return "\n".join(f"[{i}] {' '.join(note.split())}" for i, note in enumerate(notes, start=1))


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)


def _named(message: AIMessage, name: str) -> AIMessage:
    """The model's answer, labelled with the agent that gave it (shown in the trace's chat)."""
    return message.model_copy(update={"name": name})


def supervisor(state: ResearchState) -> dict[str, Any]:
    iterations = state.get("iterations", 0)
    limit = max_iterations_of(state)
    notes = state.get("notes", [])
    prompt = (
        f"Task: {state['task']}\n"
        f"Research rounds used: {iterations} of {limit}\n"
        + (f"Research notes so far:\n{_numbered(notes)}" if notes else "Research notes so far: none yet.")
    )
    answer = get_chat_model("supervisor").invoke([SystemMessage(SUPERVISOR_PROMPT), HumanMessage(prompt)])
    text = _text(answer).strip()
    first = text.split(None, 1)[0].strip(" .:*#").upper() if text else ""
    update: dict[str, Any] = {"messages": [_named(answer, "supervisor")]}
    if first == "DONE":
        return {**update, "decision": "done", "stopped_by": "supervisor"}
    if iterations >= limit:
        # The hard guard: the model wants more, but the rounds are spent.
        return {**update, "decision": "done", "stopped_by": "max_iterations"}
    match = re.search(r"next query\s*:\s*(.+)", text, re.IGNORECASE)
    query = match.group(1).strip() if match else state["task"]
    return {**update, "decision": "continue", "next_query": query, "iterations": iterations + 1}


def _supervisor_answer(state: ResearchState) -> str:
    """What the supervisor said last; before it has spoken, its recorded decision."""
    for message in reversed(state.get("messages", [])):
        if isinstance(message, AIMessage) and message.name == "supervisor":
            return _text(message)
    return state.get("decision", "")


# Where the supervisor's answer leads, by similarity to these phrases. Offline the
# router compares words (see orchestrator.router.HashingEmbeddings), so the
# phrases use the supervisor prompt's own words; with an embeddings endpoint
# they are compared by meaning.
supervisor_router = SemanticRouter(
    "route_after_supervisor",
    {
        "search": [
            "CONTINUE",
            "Next query: research the aspect the notes do not cover yet",
            "more research is needed before writing the report",
        ],
        "synthesizer": [
            "DONE",
            "the research notes are enough to write a good report",
            "the notes cover the task; the synthesizer can write the report now",
        ],
    },
    text=_supervisor_answer,
)


def route_after_supervisor(state: ResearchState) -> str:
    """Where the supervisor's answer leads: "search" for another round, "synthesizer" to finish.

    A semantic router reads the answer and picks the route whose example
    phrases it resembles most (the decision and its scores are recorded as a
    router span). The iteration guard comes first and does not ask it, so no
    answer can loop past ``max_iterations``.
    """
    if state.get("stopped_by") == "max_iterations" or state.get("iterations", 0) > max_iterations_of(state):
        return "synthesizer"
    return supervisor_router(state)


def _current_round(messages: list[AnyMessage]) -> list[AnyMessage]:
    """This round's messages: from the supervisor's latest brief to the search agent on."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, HumanMessage) and message.name == "supervisor":
            return messages[index:]
    return []


def search_agent(state: ResearchState) -> dict[str, Any]:
    messages = state.get("messages", [])
    model = get_chat_model("search")
    if messages and isinstance(messages[-1], ToolMessage):
        # Back from the tool: write the note. tool_choice="none" keeps a real
        # model from searching again, so each round is one search and one note.
        answer = model.bind_tools(TOOLS, tool_choice="none").invoke(
            [SystemMessage(SEARCH_PROMPT), *_current_round(messages)]
        )
        note = _text(answer).strip() or "The search agent returned no note."
        return {"messages": [_named(answer, "search")], "notes": [note]}
    brief = HumanMessage(f"Task: {state['task']}\nQuery: {state.get('next_query') or state['task']}", name="supervisor")
    answer = model.bind_tools(TOOLS).invoke([SystemMessage(SEARCH_PROMPT), brief])
    update: dict[str, Any] = {"messages": [brief, _named(answer, "search")]}
    if not answer.tool_calls:
        # A model that answered without searching still hands in its note.
        update["notes"] = [_text(answer).strip() or "The search agent returned no note."]
    return update


def route_after_search(state: ResearchState) -> str:
    last = state["messages"][-1]
    return "search_tools" if isinstance(last, AIMessage) and last.tool_calls else "supervisor"


def synthesizer(state: ResearchState) -> dict[str, Any]:
    notes = state.get("notes", [])
    prompt = f"Task: {state['task']}\nResearch notes:\n{_numbered(notes) if notes else '(none)'}\n\nWrite the report."
    answer = get_chat_model("synthesizer").invoke([SystemMessage(SYNTHESIZER_PROMPT), HumanMessage(prompt)])
    return {"messages": [_named(answer, "synthesizer")], "report": _text(answer).strip()}


workflow = StateGraph(ResearchState, input_schema=ResearchInput)
workflow.add_node("supervisor", supervisor)
workflow.add_node("search", search_agent)
workflow.add_node("search_tools", ToolNode(TOOLS))
workflow.add_node("synthesizer", synthesizer)
workflow.add_edge(START, "supervisor")
workflow.add_conditional_edges(
    "supervisor", route_after_supervisor, {"search": "search", "synthesizer": "synthesizer"}
)
workflow.add_conditional_edges(
    "search", route_after_search, {"search_tools": "search_tools", "supervisor": "supervisor"}
)
workflow.add_edge("search_tools", "search")
workflow.add_edge("synthesizer", END)
