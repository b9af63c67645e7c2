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
        assert "loopgate_lease" not in json.dumps(seen)  # the worker's lease token stays in the worker
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


class CutOff:
    """A raw HTTP/1.1 stream on a socket of its own, read event by event, then closed mid-run."""

    def __init__(self, url: str, token: str, path: str, body: dict[str, Any]) -> None:
        import http.client

        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        payload = json.dumps(body).encode()
        self.conn.request("POST", f"{parts.path}{path}", body=payload,
                          headers={"x-api-key": token, "Content-Type": "application/json",
                                   "Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()

    def read(self, count: int) -> list[tuple[str, Any, str | None]]:
        """The next ``count`` events as (name, data, id)."""
        out: list[tuple[str, Any, str | None]] = []
        name = data = event_id = None
        while len(out) < count:
            line = self.response.readline().decode().rstrip("\r\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line == "" and name:
                out.append((name, data, event_id))
                name = data = event_id = None
        return out

    def cut(self) -> None:
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def _status(client: Any, thread: str, run_id: str) -> str:
    return client.runs.get(thread, run_id)["status"]


class ReJoinTests:
    def test_a_client_cut_off_mid_run_rejoins_and_gets_every_later_event_exactly_once(self, lg) -> None:
        client = lg.sync("operator")
        thread = client.threads.create()["thread_id"]
        cut = CutOff(lg.url, lg.tokens["operator"], f"/threads/{thread}/runs/stream",
                     {"assistant_id": "lg_slow", "input": {"limit": 12}, "stream_mode": ["updates", "values"],
                      "stream_resumable": True})
        before = cut.read(5)  # metadata, the input's values, then the first two ticks' update and values
        cut.cut()
        run_id = before[0][1]["run_id"]
        assert _status(client, thread, run_id) == "running"  # cut off while the run goes on
        assert all(event_id for _, _, event_id in before)

        after = [(p.event, p.data, p.id) for p in
                 client.runs.join_stream(thread, run_id, last_event_id=before[-1][2])]
        assert _status(client, thread, run_id) == "success"  # the cut did not stop it
        whole = [(p.event, p.data, p.id) for p in
                 client.runs.join_stream(thread, run_id, last_event_id="0", stream_mode=["updates", "values"])]
        assert before + after == whole
        assert len({event_id for _, _, event_id in whole}) == len(whole)
        assert [data["n"] for name, data, _ in whole if name == "values" and "n" in data] == list(range(1, 13))

    def test_last_event_id_resumes_a_messages_stream_with_the_whole_message_so_far(self, lg) -> None:
        client = lg.sync("operator")
        seen = [(p.event, p.data, p.id) for p in client.runs.stream(
            None, "lg_chat", input={"messages": [{"role": "user", "content": "yo"}]}, stream_mode="messages",
            stream_resumable=True)]
        run_id = seen[0][1]["run_id"]
        thread = str(Execution.objects.get(id=run_id).langgraph_thread)
        assert [name for name, _, _ in seen] == ["metadata", "messages/metadata"] + ["messages/partial"] * 5
        assert len({event_id for _, _, event_id in seen}) == len(seen)
        for k in (1, 2, 4):  # between the two events of one token, after a token, after the third
            rejoined = [(p.event, p.data, p.id) for p in
                        client.runs.join_stream(thread, run_id, last_event_id=seen[k][2], stream_mode="messages")]
            assert rejoined == seen[k + 1:]


class DisconnectTests:
    def test_on_disconnect_cancel_cancels_the_run_when_the_client_goes_away(self, lg) -> None:
        client = lg.sync("operator")
        thread = client.threads.create()["thread_id"]
        cut = CutOff(lg.url, lg.tokens["operator"], f"/threads/{thread}/runs/stream",
                     {"assistant_id": "lg_slow", "input": {"limit": 40}, "stream_mode": "updates",
                      "on_disconnect": "cancel"})
        run_id = cut.read(2)[0][1]["run_id"]
        cut.cut()
        wait_for(lambda: Execution.objects.get(id=run_id).status == "cancelled", what="the run to be cancelled")
        assert Execution.objects.get(id=run_id).state["n"] < 40

    def test_by_default_the_run_goes_on_without_its_client(self, lg) -> None:
        client = lg.sync("operator")
        thread = client.threads.create()["thread_id"]
        cut = CutOff(lg.url, lg.tokens["operator"], f"/threads/{thread}/runs/stream",
                     {"assistant_id": "lg_slow", "input": {"limit": 6}, "stream_mode": "updates"})
        run_id = cut.read(2)[0][1]["run_id"]
        cut.cut()
        assert client.runs.join(thread, run_id) == {"n": 6, "limit": 6}
        assert Execution.objects.get(id=run_id).status == "succeeded"
