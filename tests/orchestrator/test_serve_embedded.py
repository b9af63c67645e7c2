"""The embedded default end to end: `manage.py serve` on SQLite with no Redis
serves the dashboard, the demo login works, and an execution started from the
Graphs page runs on the in-process Celery worker, not in the web request."""

from __future__ import annotations

import re
import time

import requests
from websockets.sync.client import connect

from tests.services import embedded_server, wait_for


def test_serve_answers_logs_in_a_demo_user_and_runs_an_execution_in_process() -> None:
    with embedded_server(["setup_demo"]) as (base, outputs):
        assert "operator  / loopgate-demo" in outputs[0]
        port = int(base.rsplit(":", 1)[1])
        session = requests.Session()
        page = session.get(f"{base}/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        landed = session.post(f"{base}/login/", data={"csrfmiddlewaretoken": token, "username": "operator",
                                                      "password": "loopgate-demo"}, headers={"Referer": base},
                              timeout=10)
        assert landed.status_code == 200 and "Log out" in landed.text
        graphs = session.get(f"{base}/graphs/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', graphs.text).group(1)
        started = session.post(
            f"{base}/graphs/t_counter/start/",
            data={"csrfmiddlewaretoken": token, "input": '{"n": 0, "target": 4, "sleep": 0.5}',
                  "token_budget": "", "recursion_limit": ""},
            headers={"Referer": base}, timeout=10, allow_redirects=False,
        )
        assert started.status_code == 302, started.text[:2000]
        execution_url = base + started.headers["Location"]
        execution_id = started.headers["Location"].strip("/").split("/")[-1]
        # The request came back at once: the two-second run happens on the worker, not in the request.
        first = session.get(execution_url, timeout=10).text
        assert "succeeded" not in first

        # Live updates reach the browser in embedded mode too (worker and web share the in-memory layer).
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        pushed = []
        with connect(f"ws://127.0.0.1:{port}/ws/executions/{execution_id}/",
                     additional_headers={"Cookie": cookie, "Origin": base}, open_timeout=10) as socket:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any('data-live="1"' in m for m in pushed):
                try:
                    pushed.append(socket.recv(timeout=5))
                except TimeoutError:
                    break
        assert any('beforeend:#timeline-rows' in m and 'data-live="1"' in m for m in pushed), pushed[:3]

        def succeeded() -> bool:
            return "succeeded" in session.get(execution_url, timeout=10).text

        wait_for(succeeded, timeout=60, what="the execution to succeed on the embedded worker")
