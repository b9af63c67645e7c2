"""Each execution's event log (orchestrator/streams.py), on Redis and in memory: entries come back in
order after any id, a waiting reader is woken by a publish from another thread, the log is bounded and
expires once the run stops; the runner's publisher sends only what was asked for (and messages, for the
browser); the offline model streams its answer a token at a time."""

from __future__ import annotations

import asyncio
import functools
import operator
import threading
import uuid
from typing import Any

import pytest
from django.test import SimpleTestCase, TestCase, override_settings
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from orchestrator import streams
from orchestrator.checkpointer import LEASE_KEY
from orchestrator.examples.offline_model import OfflineChatModel
from orchestrator.models import Execution
from tests.traces.builders import make_execution


class _LogBehaviour:
    def make_log(self) -> Any:
        raise NotImplementedError

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.log = self.make_log()
        self.key = f"test-streams:{uuid.uuid4()}"

    def test_entries_come_back_in_order_after_any_id(self) -> None:
        ids = [self.log.publish(self.key, {"n": n}, ttl=60) for n in range(5)]
        assert [e for _, e in self.log.read(self.key, "0", block=0)] == [{"n": n} for n in range(5)]
        assert [i for i, _ in self.log.read(self.key, ids[2], block=0)] == ids[3:]
        assert self.log.read(self.key, ids[-1], block=0) == []
        assert self.log.last_id(self.key) == ids[-1]
        assert self.log.last_id(f"{self.key}:none") == "0"

    def test_a_waiting_async_reader_is_woken_by_a_publish_from_another_thread(self) -> None:
        async def wait() -> list[Any]:
            reader = asyncio.ensure_future(self.log.aread(self.key, "0", block=3600))
            await asyncio.sleep(0)
            threading.Thread(target=self.log.publish, args=(self.key, {"hello": "there"}), kwargs={"ttl": 60}).start()
            return await asyncio.wait_for(reader, 60)

        assert [e for _, e in asyncio.run(wait())] == [{"hello": "there"}]

    def test_a_waiting_sync_reader_is_woken_too(self) -> None:
        found: list[Any] = []
        reader = threading.Thread(target=lambda: found.extend(self.log.read(self.key, "0", block=3600)))
        reader.start()
        self.log.publish(self.key, {"a": 1}, ttl=60)
        reader.join(60)
        assert [e for _, e in found] == [{"a": 1}]

    @override_settings(LOOPGATE_STREAM_MAX_EVENTS=100)
    def test_the_log_is_bounded(self) -> None:
        for n in range(400):
            self.log.publish(self.key, {"n": n}, ttl=60)
        kept = self.log.read(self.key, "0", block=0)
        # Redis trims approximately (whole nodes of the stream); never fewer than asked, never all.
        assert 100 <= len(kept) < 400 and kept[-1][1] == {"n": 399}


class MemoryLogTests(_LogBehaviour, SimpleTestCase):
    def make_log(self) -> Any:
        return streams.MemoryLog()


class RedisLogTests(_LogBehaviour, SimpleTestCase):
    def make_log(self) -> Any:
        from django.conf import settings

        assert settings.REDIS_URL, "the suite runs on Redis (REDIS_URL)"
        return streams.RedisLog(settings.REDIS_URL)

    def tearDown(self) -> None:
        self.log.client.delete(self.key)
        super().tearDown()

    def test_the_log_expires_after_the_run_stops(self) -> None:
        execution_id = uuid.uuid4()
        streams.publish(execution_id, "values", {"a": 1})
        key = streams._key(execution_id)
        live = self.log.client.ttl(key)
        streams.status_changed(execution_id, "succeeded")
        from django.conf import settings

        assert 0 < self.log.client.ttl(key) <= settings.LOOPGATE_STREAM_KEEP_SECONDS < live
        assert streams.read(execution_id)[-1][1] == {"mode": "status", "ns": [], "data": {"status": "succeeded"}}
        self.log.client.delete(key)


class StatusTests(TestCase):
    def test_a_failed_run_closes_its_log_with_its_error_and_other_changes_add_nothing(self) -> None:
        execution = make_execution(status=Execution.Status.FAILED, error={"type": "ValueError", "message": "bad"})
        streams.status_changed(execution.id, "running")
        assert streams.read(execution.id) == []
        streams.status_changed(execution.id, "failed")
        assert [e["data"] for _, e in streams.read(execution.id)] == [
            {"status": "failed", "error": {"error": "ValueError", "message": "bad"}}]


class PublisherTests(SimpleTestCase):
    def test_the_runner_asks_langgraph_for_debug_messages_and_what_readers_asked_for(self) -> None:
        run = uuid.uuid4()
        assert streams.Publisher(run).stream_modes == ["debug", "messages"]
        streams.request(run, modes=["updates", "nonsense"])
        streams.request(run, modes=["values"], subgraphs=True)  # a resume adds its modes
        publisher = streams.Publisher(run)
        assert publisher.stream_modes == ["debug", "values", "updates", "messages"] and publisher.subgraphs
        assert publisher.split((("inner:1",), "updates", {"x": 1})) == (("inner:1",), "updates", {"x": 1})

    def test_debug_events_are_published_only_when_asked_for_and_never_the_lease(self) -> None:
        run = uuid.uuid4()
        publisher = streams.Publisher(run)
        publisher.publish((), "debug", {"type": "task"})
        publisher.publish((), "checkpoints", {"config": {"configurable": {"thread_id": "t", LEASE_KEY: {"token": "w"}}}})
        assert [e for _, e in streams.read(run)] == [
            {"mode": "checkpoints", "ns": [], "data": {"config": {"configurable": {"thread_id": "t"}}}}]


class OfflineStreamingTests(SimpleTestCase):
    def test_the_offline_model_streams_its_answer_a_token_at_a_time_inside_a_graph(self) -> None:
        model = OfflineChatModel(purpose="writer")

        def chat(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        builder = StateGraph(MessagesState)
        builder.add_node("chat", chat)
        builder.add_edge(START, "chat")
        builder.add_edge("chat", END)
        question = [HumanMessage("Write about owls")]
        tokens = [chunk.content for chunk, _meta in builder.compile().stream({"messages": question},
                                                                              stream_mode="messages")]
        whole = model.invoke(question)
        assert len([t for t in tokens if t]) > 5 and "".join(tokens) == whole.content
        streamed = functools.reduce(operator.add, model.stream(question))
        assert streamed.usage_metadata == whole.usage_metadata
