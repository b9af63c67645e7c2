"""Streaming in the embedded default: `manage.py serve` on SQLite with no Redis, the worker on threads in
the server process and the event log in memory. A run streams its updates and its LLM tokens through
LangGraph's SDK, and a join after a Last-Event-ID gets the rest of the log exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from tests.services import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow]


def test_the_embedded_server_streams_runs_from_its_in_memory_log() -> None:
    from django.conf import settings
    from langgraph_sdk import get_sync_client

    db = Path(tempfile.mkdtemp(prefix="loopgate-stream-")) / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(DJANGO_SETTINGS_MODULE="orchestrator.settings", DATABASE_URL=f"sqlite:///{db}", PYTHONUNBUFFERED="1",
               LOOPGATE_GRAPHS=settings.LOOPGATE_GRAPHS)
    for args in (["migrate", "--noinput"], ["setup_demo"], ["drf_create_token", "operator"]):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    token = done.stdout.split()[2]  # "Generated token <key> for user operator"
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="loopgate-stream-", suffix=".log", delete=False)
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return requests.get(f"{base}/login/", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, timeout=60, what="the server")
        client = get_sync_client(url=f"{base}/langgraph", api_key=token)
        thread = client.threads.create()["thread_id"]
        parts = list(client.runs.stream(thread, "lg_chat", input={"messages": [{"role": "user", "content": "yo"}]},
                                        stream_mode=["updates", "messages-tuple"], stream_resumable=True))
        assert [p.event for p in parts] == ["metadata"] + ["messages"] * 5 + ["updates"]
        assert "".join(p.data[0]["content"] for p in parts if p.event == "messages") == "hello there you"
        rest = list(client.runs.join_stream(thread, parts[0].data["run_id"], last_event_id=parts[2].id))
        assert [(p.event, p.data, p.id) for p in rest] == [(p.event, p.data, p.id) for p in parts[3:]]
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.returncode not in (0, -15):
            print(Path(log.name).read_text()[-4000:])
