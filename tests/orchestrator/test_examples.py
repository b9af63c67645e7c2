"""The FinOps and deep-research example graphs, run for real on LangGraph's
in-memory saver and the offline model (no LangGraph mocks, no network)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from langgraph.types import Command

from orchestrator.examples import deep_research, finops


@pytest.fixture(autouse=True)
def _offline() -> Iterator[None]:
    with override_settings(LOOPGATE_LLM_BASE_URL="", LOOPGATE_LLM_MODEL="", LOOPGATE_LLM_API_KEY=""):
        yield


def _config(**extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": str(uuid.uuid4())}, **extra}


class _Calls(BaseCallbackHandler):
    def __init__(self) -> None:
        self.llm: list[str] = []
        self.tools: list[str] = []
        self.tokens = 0

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.llm.append(kwargs["metadata"].get("loopgate_purpose", "?"))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.tokens += response.generations[0][0].message.usage_metadata["total_tokens"]

    def on_tool_start(self, serialized: Any, input_str: str, **kwargs: Any) -> None:
        self.tools.append(serialized.get("name", "?"))


@pytest.mark.parametrize("module", [finops, deep_research], ids=["finops", "deep_research"])
def test_module_shape(module: Any) -> None:
    """What the registry reads: an uncompiled StateGraph, a description, a JSON example input
    that the input schema accepts, and a graph that compiles (the state's runtime annotations resolve)."""
    assert isinstance(module.workflow, StateGraph)
    assert (module.__doc__ or "").strip()
    json.dumps(module.EXAMPLE_INPUT)
    compiled = module.workflow.compile(checkpointer=InMemorySaver())
    schema = compiled.get_input_jsonschema()
    assert set(module.EXAMPLE_INPUT) <= set(schema["properties"])
    assert compiled.get_graph().draw_mermaid()


# --- finops -----------------------------------------------------------------------------------


def _finops_until_interrupt(**input_overrides: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    graph = finops.workflow.compile(checkpointer=InMemorySaver())
    config = _config()
    result = graph.invoke({**finops.EXAMPLE_INPUT, **input_overrides}, config)
    [pending] = result["__interrupt__"]
    return graph, config, pending.value


def test_finops_stops_at_one_interrupt_naming_the_action_and_the_cluster() -> None:
    graph, config, value = _finops_until_interrupt()
    assert value["action"] == "shutdown_cluster"
    assert value["cluster"] == "dev-analytics-2"
    assert value["owner"] == "maria.lopez"
    assert value["region"] == "eu-west-1"
    assert value["monthly_cost_usd"] == 18300
    assert value["timeout_seconds"] == 7200
    assert value["high_stakes"] is True  # a shutdown: one key press does not approve it
    assert "dev-analytics-2" in value["description"] and "2 hours" in value["description"]
    json.dumps(value)  # the approvals app stores it as JSON
    snapshot = graph.get_state(config)
    assert snapshot.next == ("await_approval",)
    assert len(snapshot.interrupts) == 1
    state = snapshot.values
    assert state["spike"]["service"] == "EKS" and state["spike"]["increase_pct"] > 25
    assert state.get("actions_taken", []) == []
    # The Communication agent's chat is in the state, with the model's usage.
    answer = state["messages"][-1]
    assert isinstance(answer, AIMessage) and answer.name == "communication"
    assert answer.usage_metadata and answer.usage_metadata["total_tokens"] > 0


def test_finops_deadline_comes_from_the_input() -> None:
    _, _, value = _finops_until_interrupt(approval_timeout_seconds=600)
    assert value["timeout_seconds"] == 600
    assert "10 minutes" in value["description"]


@pytest.mark.parametrize(
    "answer",
    [{"type": "approve"}, {"type": "accept"}, {"decision": "approve"}, {"decisions": [{"type": "approve"}]},
     [{"type": "accept", "args": None}], "approve", True],
    ids=["type-approve", "type-accept", "decision-approve", "hitl", "agent-inbox", "string", "true"],
)
def test_finops_approved_shuts_the_cluster_down(answer: Any) -> None:
    graph, config, _ = _finops_until_interrupt()
    state = graph.invoke(Command(resume=answer), config)
    assert "__interrupt__" not in state
    assert state["outcome"] == "shut_down"
    [action] = state["actions_taken"]
    assert action["action"] == "shutdown_cluster" and action["cluster"] == "dev-analytics-2"
    assert action["simulated"] is True
    assert state.get("notifications", []) == []
    assert graph.get_state(config).next == ()


def test_finops_an_edit_approves_the_shutdown_done_the_reviewers_way() -> None:
    app, config, _ = _finops_until_interrupt()
    edited = {"cluster": "dev-analytics-2", "snapshot_first": False, "grace_period_minutes": 5}
    state = app.invoke(Command(resume={"type": "edit", "args": edited, "by": "rita"}), config)
    [action] = state["actions_taken"]
    assert (action["snapshot_first"], action["grace_period_minutes"], action["approved_by"]) == (False, 5, "rita")


def test_finops_records_who_approved() -> None:
    graph, config, _ = _finops_until_interrupt()
    state = graph.invoke(Command(resume={"type": "approve", "by": "maria.lopez"}), config)
    assert state["actions_taken"][0]["approved_by"] == "maria.lopez"


def test_finops_timeout_escalates_and_takes_no_action() -> None:
    graph, config, _ = _finops_until_interrupt()
    # The escalate node runs, not the action node.
    nodes = [node for update in graph.stream(Command(resume={"type": "timeout"}), config, stream_mode="updates")
             for node in update]
    assert nodes == ["await_approval", "escalate"]
    state = graph.get_state(config)
    assert state.next == ()
    assert state.values["outcome"] == "escalated"
    assert state.values.get("actions_taken", []) == []
    [notification] = state.values["notifications"]
    assert notification["to"] == "dana.kim" and notification["about"] == "dev-analytics-2"
    assert "2 hours" in notification["message"]


@pytest.mark.parametrize(
    "answer",
    [{"type": "reject", "message": "Still needed for the Q2 load test"}, {"type": "respond", "message": "Wait"},
     {"type": "edit", "args": {"cluster": "prod-api-1"}}, {"something": "else"}, "maybe", 0, False],
    ids=["reject", "respond", "edit", "unknown-dict", "unknown-string", "zero", "false"],
)
def test_finops_anything_but_approval_or_timeout_ends_without_action(answer: Any) -> None:
    graph, config, _ = _finops_until_interrupt()
    state = graph.invoke(Command(resume=answer), config)
    assert state["outcome"] == "declined"
    assert state.get("actions_taken", []) == [] and state.get("notifications", []) == []


def test_finops_rejection_reason_is_kept() -> None:
    graph, config, _ = _finops_until_interrupt()
    state = graph.invoke(Command(resume={"type": "reject", "message": "Still needed"}), config)
    assert state["decision"]["comment"] == "Still needed"
    assert "Still needed" in state["summary"]


def test_finops_without_a_spike_ends_without_asking() -> None:
    graph = finops.workflow.compile(checkpointer=InMemorySaver())
    state = graph.invoke({"account": "acme-staging"}, _config())
    assert "__interrupt__" not in state
    assert state["outcome"] == "no_spike"
    assert "spike" not in state and "cluster" not in state


def test_finops_unknown_account_ends_with_a_clear_summary() -> None:
    graph = finops.workflow.compile(checkpointer=InMemorySaver())
    state = graph.invoke({"account": "nobody"}, _config())
    assert state["outcome"] == "no_data" and "acme-prod" in state["summary"]


def test_finops_is_deterministic() -> None:
    _, _, first = _finops_until_interrupt()
    _, _, second = _finops_until_interrupt()
    assert first == second


# --- deep research ----------------------------------------------------------------------------


def _research(**input_overrides: Any) -> tuple[dict[str, Any], _Calls, list[str]]:
    graph = deep_research.workflow.compile(checkpointer=InMemorySaver())
    calls = _Calls()
    config = _config(callbacks=[calls])
    nodes: list[str] = []
    for update in graph.stream({**deep_research.EXAMPLE_INPUT, **input_overrides}, config, stream_mode="updates"):
        nodes.extend(update)
    return graph.get_state(config).values, calls, nodes


def _supervisor_to_search_loops(nodes: list[str]) -> int:
    return sum(1 for a, b in zip(nodes, nodes[1:]) if (a, b) == ("supervisor", "search"))


def test_deep_research_runs_to_a_report_offline() -> None:
    state, calls, nodes = _research()
    assert nodes[0] == "supervisor" and nodes[-1] == "synthesizer"
    assert _supervisor_to_search_loops(nodes) >= 2
    assert state["report"].strip()
    assert state["report"].startswith("# Compare durable execution options for LangGraph agents")
    assert len(state["notes"]) == state["iterations"] >= 2
    for note in state["notes"]:
        assert note in state["report"]
    # Several model calls from every agent, and the search tool through the model's tool calls.
    assert len(calls.llm) >= 6
    assert {"supervisor", "search", "synthesizer"} <= set(calls.llm)
    assert calls.tools.count("search") == state["iterations"]
    assert calls.tokens > 0
    # The supervisor judged the research sufficient (by its answer), within the guard.
    assert state["stopped_by"] == "supervisor"
    assert state["iterations"] <= state["max_iterations"]


def test_deep_research_messages_show_the_chat() -> None:
    state, _, _ = _research()
    messages = state["messages"]
    names = [m.name for m in messages if isinstance(m, AIMessage)]
    assert names[0] == "supervisor" and names[-1] == "synthesizer" and "search" in names
    tool_calls = [m for m in messages if isinstance(m, AIMessage) and m.tool_calls]
    tool_results = [m for m in messages if isinstance(m, ToolMessage)]
    assert len(tool_calls) == len(tool_results) == state["iterations"]
    assert {c["id"] for m in tool_calls for c in m.tool_calls} == {m.tool_call_id for m in tool_results}
    briefs = [m for m in messages if isinstance(m, HumanMessage)]
    assert all(m.name == "supervisor" and "Query:" in m.content for m in briefs)
    assert all(m.usage_metadata for m in messages if isinstance(m, AIMessage))


def test_deep_research_max_iterations_is_a_hard_guard() -> None:
    state, calls, nodes = _research(max_iterations=1)
    assert state["iterations"] == 1
    assert _supervisor_to_search_loops(nodes) == 1
    assert state["stopped_by"] == "max_iterations"
    assert state["report"].strip()
    assert calls.tools == ["search"]


def test_deep_research_caps_an_oversized_max_iterations() -> None:
    assert deep_research.max_iterations_of({"max_iterations": 10_000}) == deep_research.MAX_ITERATIONS_CAP
    assert deep_research.max_iterations_of({"max_iterations": 0}) == 1
    assert deep_research.max_iterations_of({"max_iterations": "3"}) == deep_research.DEFAULT_MAX_ITERATIONS
    assert deep_research.max_iterations_of({}) == deep_research.DEFAULT_MAX_ITERATIONS


def test_deep_research_is_deterministic() -> None:
    first, first_calls, first_nodes = _research()
    second, second_calls, second_nodes = _research()
    assert first["report"] == second["report"]
    assert first["notes"] == second["notes"]
    assert first_nodes == second_nodes
    assert first_calls.tokens == second_calls.tokens


def test_route_after_supervisor() -> None:
    route = deep_research.route_after_supervisor
    assert route({"decision": "continue", "iterations": 1, "max_iterations": 3}) == "search"
    assert route({"decision": "done", "iterations": 1, "max_iterations": 3}) == "synthesizer"
    assert route({"decision": "continue", "iterations": 4, "max_iterations": 3}) == "synthesizer"


def test_search_tool_is_deterministic_and_relevant() -> None:
    first = deep_research.search.invoke({"query": "human-in-the-loop interrupts and approvals"})
    assert first == deep_research.search.invoke({"query": "human-in-the-loop interrupts and approvals"})
    assert first.startswith("[langgraph-docs/interrupts] Human-in-the-loop interrupts:")
    assert deep_research.search.invoke({"query": "zebra"}) == "No results."
