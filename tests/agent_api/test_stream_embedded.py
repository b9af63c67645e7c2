"""Streaming in the embedded default: `manage.py serve` on SQLite with no Redis, the worker on threads in
the server process and the event log in memory. A run streams its updates and its LLM tokens through
LangGraph's SDK, and a join after a Last-Event-ID gets the rest of the log exactly once."""

from __future__ import annotations

import pytest

from tests.services import embedded_server

pytestmark = [pytest.mark.slow]


def test_the_embedded_server_streams_runs_from_its_in_memory_log() -> None:
    from langgraph_sdk import get_sync_client

    with embedded_server(["setup_demo"], ["drf_create_token", "operator"]) as (base, outputs):
        token = outputs[1].split()[2]  # "Generated token <key> for user operator"
        client = get_sync_client(url=f"{base}/langgraph", api_key=token)
        thread = client.threads.create()["thread_id"]
        parts = list(client.runs.stream(thread, "lg_chat", input={"messages": [{"role": "user", "content": "yo"}]},
                                        stream_mode=["updates", "messages-tuple"], stream_resumable=True))
        assert [p.event for p in parts] == ["metadata"] + ["messages"] * 5 + ["updates"]
        assert "".join(p.data[0]["content"] for p in parts if p.event == "messages") == "hello there you"
        rest = list(client.runs.join_stream(thread, parts[0].data["run_id"], last_event_id=parts[2].id))
        assert [(p.event, p.data, p.id) for p in rest] == [(p.event, p.data, p.id) for p in parts[3:]]
