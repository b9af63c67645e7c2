"""The embedded default end to end: `manage.py serve` on SQLite with no Redis
serves the dashboard, the demo login works, and an execution started from the
Graphs page runs on the in-process Celery worker, not in the web request."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.services import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_serve_answers_logs_in_a_demo_user_and_runs_an_execution_in_process() -> None:
    db = Path(tempfile.mkdtemp(prefix="loopgate-serve-")) / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "LOOPGATE_GRAPHS")}
    env.update(DJANGO_SETTINGS_MODULE="orchestrator.settings", DATABASE_URL=f"sqlite:///{db}", PYTHONUNBUFFERED="1")
    for args in (["migrate", "--noinput"], ["setup_demo"]):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert "operator  / loopgate-demo" in done.stdout
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="loopgate-serve-", suffix=".log", delete=False)
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
            f"{base}/graphs/seed/start/",
            data={"csrfmiddlewaretoken": token, "input": '{"task": "t", "reports": [], "iterations": 0, '
                  '"is_complete": false}', "token_budget": "", "recursion_limit": ""},
            headers={"Referer": base}, timeout=10, allow_redirects=False,
        )
        assert started.status_code == 302, started.text[:2000]
        execution_url = base + started.headers["Location"]

        def succeeded() -> bool:
            return "succeeded" in session.get(execution_url, timeout=10).text

        wait_for(succeeded, timeout=60, what="the execution to succeed on the embedded worker")
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.returncode not in (0, -15):
            print(Path(log.name).read_text()[-4000:])
