"""Runs streamed over SSE through LangGraph's SDK: every mode, subgraphs, errors, interrupts and resumes,
a client cut off mid-run that re-joins, and on_disconnect. Real Daphne, real Celery worker, real Redis."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from orchestrator.models import Execution
from tests.agent_api import journey
from tests.services import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def events(parts: Any) -> list[tuple[str, Any]]:
    return [(part.event, part.data) for part in parts]


class StreamModesTests:
    def test_values_and_updates_come_after_metadata_in_order(self, lg) -> None:
        client = lg.sync("operator")
        thread = client.threads.create()["thread_id"]
        seen = events(client.runs.stream(thread, "lg_echo", input={"text": "hi"}, stream_mode=["values", "updates"]))
        assert seen[0][0] == "metadata"
        run_id = seen[0][1]["run_id"]
        assert seen[0][1] == {"run_id": run_id, "attempt": 1}
        assert seen[1:] == [
            ("values", {"text": "hi", "steps": []}),
            ("updates", {"shout": {"text": "HI", "steps": ["shout"]}}),
            ("values", {"text": "HI", "steps": ["shout"]}),
            ("updates", {"count": {"steps": ["count:1"]}}),
            ("values", {"text": "HI", "steps": ["shout", "count:1"]}),
        ]
        run = client.runs.get(thread, run_id)
        assert run["status"] == "success" and run["kwargs"]["stream_mode"] == ["values", "updates"]
        assert Execution.objects.get(id=run_id).status == "succeeded"  # an ordinary execution

    def test_messages_mode_yields_the_tokens_one_by_one(self, lg) -> None:
        client = lg.sync("operator")
        seen = events(client.runs.stream(None, "lg_chat", input={"messages": [{"role": "user", "content": "yo"}]},
                                         stream_mode=["messages", "custom"]))
        names = [name for name, _ in seen]
        assert names == ["metadata", "custom", "messages/metadata"] + ["messages/partial"] * 5
        assert seen[1][1] == {"progress": "thinking"}
        assert list(seen[2][1]) == ["answer-1"] and seen[2][1]["answer-1"]["metadata"]["langgraph_node"] == "chat"
        assert [data[0]["content"] for name, data in seen[3:]] == [
            "hello", "hello ", "hello there", "hello there ", "hello there you"]
        assert {data[0]["type"] for _, data in seen[3:]} == {"ai"}

    def test_messages_tuple_mode_yields_each_chunk_with_its_metadata(self, lg) -> None:
        client = lg.sync("operator")
        seen = events(client.runs.stream(None, "lg_chat", input={"messages": [{"role": "user", "content": "yo"}]},
                                         stream_mode="messages-tuple"))
        assert [name for name, _ in seen] == ["metadata"] + ["messages"] * 5
        assert [chunk["content"] for _, (chunk, _meta) in seen[1:]] == ["hello", " ", "there", " ", "you"]
        assert {meta["langgraph_node"] for _, (_chunk, meta) in seen[1:]} == {"chat"}

    def test_tasks_checkpoints_debug_and_events_modes(self, lg) -> None:
        client = lg.sync("operator")
        seen = events(client.runs.stream(None, "lg_chat", input={"messages": [{"role": "user", "content": "yo"}]},
                                         stream_mode=["tasks", "checkpoints", "debug", "events"]))
        names = [name for name, _ in seen]
        assert names[0] == "metadata"
        tasks = [data for name, data in seen if name == "tasks"]
        assert [t["name"] for t in tasks] == ["chat", "chat"] and "result" in tasks[1]
        checkpoints = [data for name, data in seen if name == "checkpoints"]
        assert [c["metadata"]["step"] for c in checkpoints] == [-1, 0, 1]
        debug = [data["type"] for name, data in seen if name == "debug"]
        assert debug[:2] == ["checkpoint", "checkpoint"] and "task_result" in debug
        tokens = [data for name, data in seen if name == "events"]
        assert [e["data"]["chunk"]["content"] for e in tokens] == ["hello", " ", "there", " ", "you"]
        assert {e["event"] for e in tokens} == {"on_chat_model_stream"}

    def test_subgraph_events_are_named_by_their_namespace(self, lg) -> None:
        client = lg.sync("operator")
        seen = events(client.runs.stream(None, "lg_nested", input={"text": "a"}, stream_mode="updates",
                                         stream_subgraphs=True))
        names = [name for name, _ in seen]
        assert names[:2] == ["metadata", "updates"]
        inner = [(name, data) for name, data in seen if name.startswith("updates|inner:")]
        assert len(inner) == 1 and inner[0][1] == {"inner_step": {"steps": ["inner"]}}
        assert seen[-1] == ("updates", {"inner": {"text": "A", "steps": ["shout", "inner"]}})
        flat = events(client.runs.stream(None, "lg_nested", input={"text": "a"}, stream_mode="updates"))
        assert [name for name, _ in flat] == ["metadata", "updates", "updates"]

    def test_a_failing_run_ends_with_an_error_event(self, lg) -> None:
        client = lg.sync("operator")
        seen = events(client.runs.stream(None, "lg_echo", input={"text": "fail"}, stream_mode="values"))
        assert seen[1:] == [("values", {"text": "fail", "steps": []}),
                            ("error", {"error": "RuntimeError", "message": "asked to fail"})]

    def test_an_interrupt_ends_the_stream_and_a_streamed_resume_goes_on(self, lg) -> None:
        operator, reviewer = lg.sync("operator"), lg.sync("reviewer")
        thread = operator.threads.create()["thread_id"]
        first = events(operator.runs.stream(thread, "lg_review", input={"topic": "x"}, stream_mode=["updates"]))
        assert [name for name, _ in first] == ["metadata", "updates", "updates"]
        assert first[-1][1]["__interrupt__"][0]["value"]["action"] == "publish"
        second = events(reviewer.runs.stream(thread, "lg_review", command={"resume": {"type": "approve"}},
                                             stream_mode=["updates"]))
        assert second == [("metadata", {"run_id": first[0][1]["run_id"], "attempt": 1}),
                          ("updates", {"review": {"decision": "approve", "log": ["review"]}}),
                          ("updates", {"publish": {"published": True, "log": ["publish"]}})]

    def test_bad_requests_answer_an_error_and_start_nothing(self, lg) -> None:
        from langgraph_sdk.errors import UnprocessableEntityError

        client = lg.sync("operator")
        before = Execution.objects.count()
        with pytest.raises(UnprocessableEntityError):
            list(client.runs.stream(None, "lg_echo", input={"text": "a"}, stream_mode="sideways"))
        assert Execution.objects.count() == before
        anonymous = lg.sync(None)
        with pytest.raises(Exception) as refused:
            list(anonymous.runs.stream(None, "lg_echo", input={"text": "a"}))
        assert getattr(refused.value, "response").status_code in (401, 403)
        assert Execution.objects.count() == before
