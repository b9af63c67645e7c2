"""Suite-wide set-up: the real services must be there, or the run stops saying so; the role users."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.test import TransactionTestCase


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.exit(
            "The suite runs on PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test "
            "(the README's test command does).",
            returncode=3,
        )
    host, port = db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)
    if not _reachable(host, port):
        pytest.exit(f"PostgreSQL is not reachable at {host}:{port}; start it and run the suite again.", returncode=3)
    if not settings.REDIS_URL:
        pytest.exit("The suite runs on Redis: set REDIS_URL=redis://127.0.0.1:6379/0.", returncode=3)
    redis = urlparse(settings.REDIS_URL)
    if not _reachable(redis.hostname or "127.0.0.1", redis.port or 6379):
        pytest.exit(f"Redis is not reachable at {settings.REDIS_URL}; start it and run the suite again.", returncode=3)


_flush = TransactionTestCase._fixture_teardown


def _fixture_teardown_that_outlasts_a_deadlock(self: TransactionTestCase) -> None:
    """The flush after a transactional test TRUNCATEs every table. A worker or server process of the
    test may still be finishing a write (a trace row committed after the run's status, a webhook's
    delivery), and PostgreSQL then breaks the deadlock by failing one side: if it is the flush, the
    tables keep their rows and every later test of the run fails on them. The flush is one
    transaction and safe to repeat, so it is tried again once the other side has finished."""
    import time

    from psycopg import errors

    def broke_a_deadlock(exc: BaseException) -> bool:
        # flush raises CommandError from Django's OperationalError from psycopg's error: walk the chain.
        seen: BaseException | None = exc
        while seen is not None:
            if isinstance(seen, (errors.DeadlockDetected, errors.LockNotAvailable)):
                return True
            seen = seen.__cause__ or seen.__context__
        return False

    for attempt in range(6):
        try:
            return _flush(self)
        except Exception as exc:
            if attempt == 5 or not broke_a_deadlock(exc):
                raise
            time.sleep(0.5 * (attempt + 1))


TransactionTestCase._fixture_teardown = _fixture_teardown_that_outlasts_a_deadlock  # type: ignore[method-assign]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    # Lets fixtures see whether the test failed (to print worker logs).
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def users(db: None) -> dict:
    """The four role users for pytest-style tests (services, consumers, graphs run in the test's
    thread). Page and API tests get them, logged in or with a token, from ``tests/base.py``."""
    from tests.factories import make_role_users

    return make_role_users()


@pytest.fixture
def runlog(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A file the test graphs append a line to each time a node runs (``LOOPGATE_TEST_RUNLOG``): how
    often each node really ran, across worker processes."""
    path = Path(tempfile.mkstemp(prefix="loopgate-runlog-")[1])
    monkeypatch.setenv("LOOPGATE_TEST_RUNLOG", str(path))
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def procs(request: pytest.FixtureRequest) -> Iterator[list[Any]]:
    """Processes a test started (``tests.services.Proc``): killed after it, their output printed if it failed."""
    started: list[Any] = []
    yield started
    for proc in started:
        proc.kill()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for proc in started:
            print(f"--- {proc.name} ---\n{proc.output()}")


@pytest.fixture
def worker(procs: list[Any]) -> Callable[..., Any]:
    """Starts a real Celery worker process: ``worker("name", concurrency=2, LOOPGATE_X="1")``. A module
    whose every test wants one worker overrides it: ``def worker(worker): return worker("mine")``."""
    from tests.services import start_worker

    def start(name: str = "w1", **kwargs: Any) -> Any:
        proc = start_worker(name, **kwargs)
        procs.append(proc)
        return proc

    return start
