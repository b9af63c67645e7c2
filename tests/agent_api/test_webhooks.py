"""A run's webhook: POSTed, signed like every Loopgate webhook, each time the run stops."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from tests.agent_api.conftest import WEBHOOK_SECRET
from tests.agent_api.test_hitl import refused

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue]]:
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put(({name.lower(): value for name, value in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


class RunWebhookTests:
    def test_a_run_posts_its_webhook_signed_when_it_waits_and_when_it_ends(self, lg, receiver) -> None:
        url, received = receiver
        operator, reviewer = lg.sync("operator"), lg.sync("reviewer")
        tid = operator.threads.create()["thread_id"]
        run = operator.runs.create(tid, "lg_review", input={"topic": "hooks"}, webhook=url)
        assert run["kwargs"]["webhook"] == url

        headers, body = received.get(timeout=60)
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == f"v1,{expected}"
        assert headers["x-loopgate-event"] == "run.stopped"
        stopped = json.loads(body)
        assert (stopped["run_id"], stopped["thread_id"], stopped["status"]) == (run["run_id"], tid, "interrupted")
        assert stopped["values"]["__interrupt__"][0]["value"]["action"] == "publish"

        reviewer.runs.wait(tid, "lg_review", command={"resume": {"type": "approve"}})
        _headers, body = received.get(timeout=60)
        ended = json.loads(body)
        assert ended["status"] == "success" and ended["values"]["published"] is True
        assert ended["run_started_at"] and ended["run_ended_at"] and ended["webhook_sent_at"]

    def test_a_webhook_to_a_host_not_allowed_is_refused_and_starts_nothing(self, lg) -> None:
        operator = lg.sync("operator")
        tid = operator.threads.create()["thread_id"]
        status, body = refused(operator.runs.create, tid, "lg_echo", input={"text": "x"},
                               webhook="http://169.254.169.254/latest")
        assert status == 422 and "LOOPGATE_RUN_WEBHOOK_HOSTS" in body
        assert operator.runs.list(tid) == []
