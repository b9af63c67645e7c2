"""The deployment owns the registry: its graphs win over the examples, the examples
are off in production unless asked for, and a broken entry never stops a command.

Real processes throughout: a Celery worker, ``manage.py`` in a subprocess with the
production settings module, and a Postgres database of the test's own for ``migrate``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from psycopg import sql

from orchestrator import registry, services
from orchestrator.models import Execution
from tests.services import ROOT, start_worker, wait_for
from traces.models import Step

OWN_SEED = '''
"""The deployment's own graph that happens to be called seed."""
from typing_extensions import TypedDict
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    task: str
    answer: str


def own(state: State) -> dict:
    return {"answer": f"the deployment's seed did: {state.get('task', '')}"}


builder = StateGraph(State)
builder.add_node("own", own)
builder.add_edge(START, "own")
builder.add_edge("own", END)
graph = builder
'''

EXAMPLES = ("seed", "finops", "deep_research")
BROKEN = json.dumps({"graphs": {"lost": "/nowhere/agent.py:graph"}})


@pytest.fixture
def own_seed(tmp_path: Path) -> str:
    path = tmp_path / "own_seed.py"
    path.write_text(textwrap.dedent(OWN_SEED).lstrip(), encoding="utf-8")
    return f"{path}:graph"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py`` with the production settings module, as an operator runs it."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("DEBUG", "LOOPGATE_EXAMPLES", "LOOPGATE_GRAPHS", "LOOPGATE_TEST_GRAPHS")}
    base.update(DJANGO_SETTINGS_MODULE="orchestrator.settings", PYTHONUNBUFFERED="1", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=180)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_deployment_graph_named_seed_runs_on_a_worker_instead_of_the_example(settings, own_seed) -> None:  # type: ignore[no-untyped-def]
    # The worker reads the same graphs (tests/settings.py merges LOOPGATE_TEST_GRAPHS into its own).
    graphs = {**json.loads(django_settings.LOOPGATE_GRAPHS)["graphs"], "seed": own_seed}
    settings.LOOPGATE_GRAPHS = json.dumps({"graphs": graphs})
    registry.reset()
    try:
        entry = registry.get_graph("seed")
        assert not entry.builtin and entry.spec == own_seed
        worker = start_worker("w-own-seed", LOOPGATE_TEST_GRAPHS=json.dumps({"seed": own_seed}))
        try:
            execution = services.execution_start(graph_name="seed", input={"task": "ship it"}, user=None)
            wait_for(lambda: Execution.objects.filter(id=execution.id, status__in=Execution.FINISHED).exists(),
                     timeout=60, what="the deployment's seed to finish")
            execution.refresh_from_db()
            assert execution.status == Execution.Status.SUCCEEDED, (execution.error, worker.output())
        finally:
            worker.kill()
        assert execution.state == {"task": "ship it", "answer": "the deployment's seed did: ship it"}
        assert execution.graph_version == entry.version
        assert [step.node for step in Step.objects.filter(execution=execution).order_by("step")] == ["__start__", "own"]
    finally:
        registry.reset()


@pytest.mark.slow
def test_with_debug_off_and_no_loopgate_examples_the_examples_are_not_listed(tmp_path: Path, own_seed) -> None:  # type: ignore[no-untyped-def]
    production = dict(DEBUG="0", SECRET_KEY="s" * 50, ALLOWED_HOSTS="loopgate.example.com",
                      REDIS_URL="redis://127.0.0.1:6379/0", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
                      LOOPGATE_GRAPHS=json.dumps({"graphs": {"mine": own_seed}}))
    listed = manage("list_graphs", **production)
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert names == ["mine"]

    asked = manage("list_graphs", LOOPGATE_EXAMPLES="1", **production)
    assert asked.returncode == 0, asked.stderr
    assert [line.split()[0] for line in asked.stdout.splitlines() if line.strip()] == [*EXAMPLES, "mine"]

    embedded_default = manage("list_graphs", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    assert embedded_default.returncode == 0, embedded_default.stderr
    assert [line.split()[0] for line in embedded_default.stdout.splitlines() if line.strip()] == list(EXAMPLES)


@pytest.fixture
def own_postgres_database():  # type: ignore[no-untyped-def]
    """An empty Postgres database of this test's own on the test server, dropped afterwards."""
    db = django_settings.DATABASES["default"]
    user, host, port = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    name = f"test_loopgate_migrate_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg.connect(host=host, port=port, user=user, password=db.get("PASSWORD") or None, dbname="postgres",
                            autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgres://{user}@{host}:{port}/{name}"
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


@pytest.mark.slow
def test_migrate_and_createsuperuser_succeed_with_a_broken_entry_and_check_still_names_it(
    own_postgres_database: str,
) -> None:
    env = dict(DATABASE_URL=own_postgres_database, LOOPGATE_GRAPHS=BROKEN)

    migrated = manage("migrate", "--noinput", **env)
    assert migrated.returncode == 0, migrated.stderr
    assert "loopgate.W001" in migrated.stderr  # said, not fatal

    created = manage("createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com",
                     DJANGO_SUPERUSER_PASSWORD="a-long-private-one", **env)
    assert created.returncode == 0, created.stderr

    checked = manage("check", **env)
    assert checked.returncode == 0, checked.stderr
    assert "(loopgate.W001) Graph 'lost' (/nowhere/agent.py:graph) cannot be loaded: file not found" in checked.stderr
    # ... and in the server log, the registry's own warning.
    assert "WARNING orchestrator.registry: Graph 'lost' (/nowhere/agent.py:graph) cannot be loaded" in checked.stderr
