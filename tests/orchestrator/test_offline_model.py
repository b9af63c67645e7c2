"""The examples' offline chat model: its script, determinism and token usage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.test import override_settings
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from orchestrator import accounting
from orchestrator.examples.offline_model import OFFLINE_MODEL_NAME, OFFLINE_NOTES_ENOUGH, OfflineChatModel, count_tokens
from orchestrator.llm import get_chat_model

OFFLINE = override_settings(LOOPGATE_LLM_BASE_URL="", LOOPGATE_LLM_MODEL="", LOOPGATE_LLM_API_KEY="")



@tool
def search(query: str) -> str:
    """Search the corpus."""
    return f"[src] Result for {query}: The answer is forty-two. More text."


@tool
def get_weather(city: str, days: int = 1) -> str:
    """The weather forecast for a city."""
    return f"Sunny in {city}."


def _chars(messages: list[BaseMessage]) -> int:
    total = 0
    for message in messages:
        total += len(message.content if isinstance(message.content, str) else json.dumps(message.content))
        if isinstance(message, AIMessage):
            total += sum(len(c["name"]) + len(json.dumps(c["args"], sort_keys=True)) for c in message.tool_calls)
    return total


# --- the offline model: determinism and usage -------------------------------------------------


def test_same_input_same_output_and_usage() -> None:
    messages = [SystemMessage("You are helpful."), HumanMessage("What is durable execution?")]
    first = OfflineChatModel().invoke(messages)
    second = OfflineChatModel().invoke(messages)
    assert first.content == second.content and first.content
    assert first.usage_metadata == second.usage_metadata
    assert first.tool_calls == second.tool_calls == []


def test_usage_is_reported_like_a_provider() -> None:
    messages = [SystemMessage("You are helpful."), HumanMessage("Hello there, model.")]
    answer = OfflineChatModel().invoke(messages)
    usage = answer.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == count_tokens(_chars(messages))
    assert usage["output_tokens"] == count_tokens(len(answer.content))
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert answer.response_metadata["model_name"] == OFFLINE_MODEL_NAME
    assert answer.response_metadata["finish_reason"] == "stop"


def test_token_rule_is_four_characters_per_token_never_zero() -> None:
    assert count_tokens(0) == 1
    assert count_tokens(4) == 1
    assert count_tokens(5) == 2
    assert count_tokens(400) == 100


def test_bound_tool_schemas_count_as_input() -> None:
    messages = [HumanMessage("Hello")]
    plain = OfflineChatModel().invoke(messages)
    with_tools = OfflineChatModel().bind_tools([get_weather], tool_choice="none").invoke(messages)
    assert plain.usage_metadata and with_tools.usage_metadata
    assert with_tools.usage_metadata["input_tokens"] > plain.usage_metadata["input_tokens"]


def test_accounting_reads_the_offline_usage() -> None:
    """The runner's accounting charges exactly what the model reports."""
    model = OfflineChatModel()
    result = model.generate([[HumanMessage("Count my tokens, please.")]])
    message = result.generations[0][0].message
    assert isinstance(message, AIMessage) and message.usage_metadata
    assert accounting.usage_from_response(result) == (
        message.usage_metadata["input_tokens"],
        message.usage_metadata["output_tokens"],
    )


class _Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []
        self.ends: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts.append(kwargs)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends.append(response)


def test_callbacks_see_the_model_name() -> None:
    recorder = _Recorder()
    get_offline = OfflineChatModel(purpose="search")
    get_offline.invoke("hi", config={"callbacks": [recorder]})
    [start] = recorder.starts
    assert start["metadata"]["ls_model_name"] == OFFLINE_MODEL_NAME
    assert start["metadata"]["ls_provider"] == "loopgate"
    assert start["invocation_params"]["model_name"] == OFFLINE_MODEL_NAME
    [end] = recorder.ends
    assert end.generations[0][0].message.usage_metadata["total_tokens"] > 0


@OFFLINE
def test_purpose_is_in_the_run_metadata() -> None:
    recorder = _Recorder()
    get_chat_model("synthesizer").invoke("hi", config={"callbacks": [recorder]})
    assert recorder.starts[0]["metadata"]["loopgate_purpose"] == "synthesizer"


def test_async_invoke_gives_the_same_answer() -> None:
    messages = [HumanMessage("Same in async?")]
    sync_answer = OfflineChatModel().invoke(messages)
    async_answer = asyncio.run(OfflineChatModel().ainvoke(messages))
    assert async_answer.content == sync_answer.content
    assert async_answer.usage_metadata == sync_answer.usage_metadata


def test_stop_sequences_cut_the_answer() -> None:
    full = OfflineChatModel(purpose="supervisor").invoke("Task: X\nResearch notes so far: none yet.")
    assert "\n" in full.content
    cut = OfflineChatModel(purpose="supervisor").invoke("Task: X\nResearch notes so far: none yet.", stop=["\n"])
    assert cut.content == "CONTINUE"


# --- the offline model: tools ------------------------------------------------------------------


def test_search_role_calls_the_search_tool_then_answers_from_the_result() -> None:
    model = OfflineChatModel(purpose="search").bind_tools([search])
    brief = HumanMessage("Task: T\nQuery: checkpoint savers")
    call = model.invoke([brief])
    assert call.content == ""
    assert call.response_metadata["finish_reason"] == "tool_calls"
    [tool_call] = call.tool_calls
    assert tool_call["name"] == "search" and tool_call["args"] == {"query": "checkpoint savers"}
    assert tool_call["id"].startswith("call_")
    assert call.usage_metadata and call.usage_metadata["output_tokens"] >= 1
    # The same input calls the tool with the same id: replays and tests are stable.
    assert OfflineChatModel(purpose="search").bind_tools([search]).invoke([brief]).tool_calls == call.tool_calls

    result = search.invoke(tool_call)
    assert isinstance(result, ToolMessage)
    note = model.invoke([brief, call, result])
    assert note.tool_calls == []
    assert "checkpoint savers" in note.content and "forty-two" in note.content and "(src)" in note.content


def test_tool_choice_none_never_calls_a_tool() -> None:
    answer = OfflineChatModel(purpose="search").bind_tools([search], tool_choice="none").invoke("Query: x")
    assert answer.tool_calls == [] and answer.content


def test_default_role_calls_a_tool_the_user_names_or_that_is_forced() -> None:
    model = OfflineChatModel()
    named = model.bind_tools([search, get_weather]).invoke("Please use get_weather for Lisbon")
    assert [c["name"] for c in named.tool_calls] == ["get_weather"]
    # Required parameters are filled; optional ones with defaults are left to the tool.
    assert named.tool_calls[0]["args"] == {"city": "Please use get_weather for Lisbon"}
    forced = model.bind_tools([search, get_weather], tool_choice="search").invoke("anything")
    assert [c["name"] for c in forced.tool_calls] == ["search"]
    unprompted = model.bind_tools([search, get_weather]).invoke("Just say hello")
    assert unprompted.tool_calls == [] and unprompted.content


def test_binding_an_unknown_tool_choice_fails() -> None:
    with pytest.raises(ValueError, match="not one of the bound tools"):
        OfflineChatModel().bind_tools([search], tool_choice="nope")


# --- the offline model: roles -----------------------------------------------------------------


def _supervise(notes: int) -> str:
    listed = "\n".join(f"[{i}] note {i}" for i in range(1, notes + 1)) or "none yet."
    answer = OfflineChatModel(purpose="supervisor").invoke(
        [SystemMessage("You are the supervisor."), HumanMessage(f"Task: Compare X\nResearch notes so far:\n{listed}")]
    )
    return str(answer.content)


def test_supervisor_continues_until_there_are_enough_notes() -> None:
    for notes in range(OFFLINE_NOTES_ENOUGH):
        answer = _supervise(notes)
        assert answer.startswith("CONTINUE\nNext query: ")
        assert "(Compare X)" in answer
    assert _supervise(OFFLINE_NOTES_ENOUGH).startswith("DONE")
    # Each round asks about a different aspect.
    queries = {_supervise(n).splitlines()[1] for n in range(OFFLINE_NOTES_ENOUGH)}
    assert len(queries) == OFFLINE_NOTES_ENOUGH


def test_role_comes_from_the_system_prompt_when_no_purpose_is_given() -> None:
    answer = OfflineChatModel().invoke(
        [SystemMessage("You are the supervisor of a research team."), HumanMessage("Task: T\n[1] a\n[2] b\n[3] c")]
    )
    assert answer.content.startswith("DONE")


def test_synthesizer_writes_a_report_from_the_notes() -> None:
    answer = OfflineChatModel(purpose="synthesizer").invoke("Task: Compare X\nResearch notes:\n[1] Alpha.\n[2] Beta.")
    assert answer.content.startswith("# Compare X")
    assert "1. Alpha." in answer.content and "2. Beta." in answer.content
    assert "simulated" in answer.content


def test_communication_writes_an_approval_request() -> None:
    answer = OfflineChatModel(purpose="communication").invoke(
        "owner: ana\ncluster: dev-1\nregion: eu-west-1\nmonthly_cost_usd: 1,200\ndeadline: 2 hours\nmanager: bo"
    )
    text = str(answer.content)
    assert text.startswith("Hi ana, the dev cluster dev-1 in eu-west-1")
    assert "$1,200 a month" in text and "2 hours" in text and "bo" in text
