"""What every script in bench/ shares: Django on a throw-away database, rounds, medians.

Each script measures several variants side by side in one run: every round runs
each variant once, in an order rotated from round to round (so neither warm-up
nor a noisy neighbour favours one), and the figures are the medians over the
rounds with their spread (min–max). Nothing here asserts a timing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# Production settings: with DEBUG on, Django logs every query (and LangGraph's
# saver, which bypasses Django, would not pay for it).
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("SECURE_COOKIES", "0")
# The built-in example graphs (the seed graph) are off in production settings unless asked for.
os.environ.setdefault("LOOPGATE_EXAMPLES", "1")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("LOOPGATE_QUEUE", f"bench-{os.getpid()}")
os.environ.setdefault("LOOPGATE_CHANNEL_PREFIX", f"bench-{os.getpid()}")


def setup_django() -> None:
    import django

    django.setup()


@contextmanager
def throwaway_database(*, keepdb: bool = False) -> Iterator[str]:
    """A database of this run's own, migrated, dropped at the end; yields its psycopg conninfo.

    Django's own test-database machinery, under a name with the pid in it, so
    parallel runs on one Postgres never drop each other's.
    """
    from django.db import connections

    connection = connections["default"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_loopgate_{os.getpid()}"
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=keepdb)
    name = connection.settings_dict["NAME"]
    try:
        yield conninfo()
    finally:
        # Whatever the script left open on its own database (a failed run) must not stop the drop.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
        for alias in connections:
            connections[alias].close()
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=keepdb)


def conninfo(alias: str = "default") -> str:
    """The psycopg conninfo of a Django database, for a reference saver on the same database."""
    from django.db import connections
    from psycopg.conninfo import make_conninfo

    params = connections[alias].get_connection_params()
    keep = {k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port") and v}
    return make_conninfo(**keep)


def rotated(variants: Sequence[Any], round_no: int) -> list[Any]:
    """The variants in this round's order: rotated by one each round."""
    k = round_no % len(variants)
    return [*variants[k:], *variants[:k]]


def spread(values: Sequence[float]) -> str:
    """``median (min–max)`` of a sample."""
    if not values:
        return "n/a"
    return f"{statistics.median(values):8.2f} ({min(values):.2f}–{max(values):.2f})"


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0–100), nearest rank: what p99 of 100 samples means."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def timed(fn: Callable[[], Any]) -> float:
    """Milliseconds one call of ``fn`` takes."""
    began = time.perf_counter()
    fn()
    return (time.perf_counter() - began) * 1000


def machine() -> str:
    """One line saying where this ran: CPU, cores, Python, Postgres."""
    import platform

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu or platform.processor()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0])


class Worker:
    """A real ``celery worker`` process on the bench's database and queue, as production runs it."""

    def __init__(self, *, graphs: dict[str, str], pool: str = "threads", concurrency: int = 8) -> None:
        self.graphs, self.pool, self.concurrency = graphs, pool, concurrency
        self.process: Any = None

    def __enter__(self) -> Worker:
        import subprocess

        env = {**os.environ, **worker_env(self.graphs)}
        self.log = open(f"/tmp/bench-worker-{os.getpid()}.log", "w")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "orchestrator", "worker", "-P", self.pool,
             "-c", str(self.concurrency), "-Q", os.environ["LOOPGATE_QUEUE"], "--include", "bench.tasks",
             "-l", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        noop_round_trip(timeout=60)  # ready once it answers
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except Exception:  # noqa: BLE001
            self.process.kill()
        self.log.close()


def worker_env(graphs: dict[str, str]) -> dict[str, str]:
    """The environment of a worker or server process on the bench's own database and graphs."""
    import json

    from django.db import connections

    settings_dict = connections["default"].settings_dict
    return {
        "DATABASE_URL": f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD'] or ''}@"
        f"{settings_dict['HOST']}:{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}",
        "LOOPGATE_GRAPHS": json.dumps({"graphs": graphs}),
        "PYTHONPATH": str(ROOT),
    }


def noop_round_trip(*, timeout: float = 10) -> float:
    """ms from queuing the no-op task to hearing it ran."""
    import uuid

    import redis
    from django.conf import settings

    from bench.tasks import noop

    # redis-py times reads out after 5 s by default; BLPOP waits longer than that on purpose.
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=None)
    key = f"bench-noop-{uuid.uuid4().hex}"
    began = time.perf_counter()
    noop.delay(key)
    if client.blpop([key], timeout=timeout) is None:
        raise RuntimeError("the Celery worker did not answer; see /tmp/bench-worker-*.log")
    return (time.perf_counter() - began) * 1000


def register_bench_graphs() -> dict[str, str]:
    """bench/graphs.py's graphs in LOOPGATE_GRAPHS, here and in the worker; the registry reloads."""
    import json

    from django.conf import settings

    from orchestrator import registry

    # The seed graph is a built-in example; these are the bench's own.
    graphs = {f"bench_{name}": f"{ROOT}/bench/graphs.py:{name}" for name in ("loop", "grow", "review", "paced")}
    settings.LOOPGATE_GRAPHS = json.dumps({"graphs": graphs})
    registry.reset()
    return graphs
