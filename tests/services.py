"""Real worker, beat and Redis processes for the runner and durability tests.

Workers are ordinary ``celery worker`` processes on the test database (the
test's rows must be committed: use ``transaction=True`` tests). A test that
flushes or kills Redis starts its own ``redis-server`` on a free port, never
touching the shared one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    name = connection.settings_dict["NAME"]
    return f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


def wait_for(predicate: Callable[[], object], *, timeout: float = 60, interval: float = 0.2, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


class Proc:
    """A child process with its output in a log file, shown when a test fails."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"loopgate-{name}-", suffix=".log", delete=False)
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-5000:]


def service_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL or "",
        LOOPGATE_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def start_worker(name: str, *, pool: str = "threads", concurrency: int = 2, **env: str) -> Proc:
    args = [CELERY, "-A", "orchestrator", "worker", "-P", pool, "-c", str(concurrency), "-n", f"{name}@%h",
            "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--without-mingle", "--without-gossip",
            "--without-heartbeat", "-l", "INFO"]
    if pool == "solo":
        args[args.index("-c"):args.index("-c") + 2] = []
    return Proc(name, args, service_env(**env))


def start_beat(**env: str) -> Proc:
    schedule = tempfile.mktemp(prefix="loopgate-beat-")
    return Proc("beat", [CELERY, "-A", "orchestrator", "beat", "-s", schedule, "-l", "INFO"], service_env(**env))


class PrivateRedis:
    """A redis-server of the test's own, on a free port, keeping nothing on disk."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="loopgate-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, timeout=10, what="the private redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@contextmanager
def embedded_server(*commands: list[str]) -> Iterator[tuple[str, list[str]]]:
    """``manage.py serve`` as ``scripts/run`` serves it: SQLite, no Redis, the in-process worker and the test
    graphs. ``commands`` run first (after ``migrate``); yields the base URL and each command's output."""
    root = Path(__file__).resolve().parents[1]
    db = Path(tempfile.mkdtemp(prefix="loopgate-embedded-")) / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DJANGO_SETTINGS_MODULE="orchestrator.settings", DATABASE_URL=f"sqlite:///{db}", PYTHONUNBUFFERED="1",
               LOOPGATE_GRAPHS=settings.LOOPGATE_GRAPHS)
    outputs = []
    for args in (["migrate", "--noinput"], *commands):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="loopgate-embedded-", suffix=".log", delete=False)  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)], cwd=root, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            import requests

            try:
                return requests.get(f"{base}/login/", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, timeout=60, what="the server")
        yield base, outputs[1:]
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.returncode not in (0, -15):
            print(Path(log.name).read_text()[-4000:])
