"""Test settings: the real settings, plus a SQLite database beside Postgres.

The suite runs on the real services (Postgres from ``DATABASE_URL``, Redis from
``REDIS_URL``); the ``sqlite`` alias lets the checkpointer and embedded-mode
tests run the same code on SQLite too.
"""

from __future__ import annotations

import os
import tempfile

# A channel-layer prefix of this run's own: parallel runs on one Redis never
# hear each other's announcements. Worker processes inherit it.
os.environ.setdefault("LOOPGATE_CHANNEL_PREFIX", f"loopgate-test-{os.getpid()}")

from orchestrator.settings import *  # noqa: F403,E402
from orchestrator.settings import DATABASES, BASE_DIR  # noqa: F401

_sqlite_dir = os.environ.get("LOOPGATE_TEST_SQLITE_DIR") or tempfile.gettempdir()
DATABASES["sqlite"] = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.path.join(_sqlite_dir, f"loopgate-{os.getpid()}.sqlite3"),
    "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 30},
    "TEST": {"NAME": os.path.join(_sqlite_dir, f"loopgate-test-{os.getpid()}.sqlite3")},
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

import json  # noqa: E402
import uuid  # noqa: E402

# The runner tests' graphs, loaded by worker processes the way users' graphs are.
TEST_GRAPHS = {
    "t_counter": "tests.orchestrator.graphs:counter",
    "t_forever": "tests.orchestrator.graphs:forever",
    "t_boom": "tests.orchestrator.graphs:boom",
    "t_guarded": "tests.orchestrator.graphs:guarded_compiled",
    "t_guarded_after": "tests.orchestrator.graphs:guarded_after",
    "t_parallel": "tests.orchestrator.graphs:parallel",
    "t_typed": "tests.orchestrator.graphs:typed",
    "t_budget_loop": "tests.orchestrator.budget_graphs:loop",
    "t_memory": "tests.orchestrator.store_graphs:memory",
    "t_memory_compiled": "tests.orchestrator.store_graphs:memory_compiled",
    "t_chatty": "tests.browser.graphs:chatty",
    **{f"t_{name}": f"tests.approvals.graphs:{name}"
       for name in ("hitl_agent", "hitl_per_call", "inbox", "plain", "branches")},
    # The advisor's findings on the pages (tests/browser/test_advisor.py): a rewritten channel and a long prompt.
    "t_advisor": "tests.advisor.graphs:demo",
    # The LangGraph-compatible API's graphs (tests/agent_api/langgraph.json serves them to `langgraph dev`).
    **{f"lg_{name}": f"tests.agent_api.graphs:{name}_graph" for name in ("review", "echo", "slow", "chat", "nested", "note")},
}
# A test that starts workers with graphs of its own passes them in LOOPGATE_TEST_GRAPHS
# ({"name": "spec"}, over the ones above), so the workers load what the test process does.
TEST_GRAPHS.update(json.loads(os.environ.get("LOOPGATE_TEST_GRAPHS") or "{}"))
LOOPGATE_GRAPHS = json.dumps({"graphs": TEST_GRAPHS})
# The suite runs the built-in examples whatever DEBUG says.
LOOPGATE_EXAMPLES = True
# A queue of this run's own on the shared Redis: stale messages of other runs
# never reach this run's workers. Worker processes inherit it from the environment.
CELERY_TASK_DEFAULT_QUEUE = os.environ.setdefault("LOOPGATE_QUEUE", f"loopgate-test-{uuid.uuid4().hex[:8]}")

# A test database of this run's own, so that parallel runs (several developers
# on one machine) never drop each other's database.
DATABASES["default"].setdefault("TEST", {})["NAME"] = f"test_loopgate_{os.getpid()}"

# The LangGraph-compatible API's run webhooks may call local test receivers only.
LOOPGATE_RUN_WEBHOOK_HOSTS = ["127.0.0.1"]

# Each run's event logs under a prefix of this run's own (orchestrator/streams.py).
os.environ.setdefault("LOOPGATE_STREAM_PREFIX", f"loopgate-test-{os.getpid()}")
LOOPGATE_STREAM_PREFIX = os.environ["LOOPGATE_STREAM_PREFIX"]
