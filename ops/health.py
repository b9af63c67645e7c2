"""What the probes ask: is the process alive, and can it serve (Postgres, Redis, migrations)?

Each check answers ``(ok, detail)`` and never raises: a probe that crashes tells
the orchestrator nothing about which dependency is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

Check = Callable[[], tuple[bool, str]]
TIMEOUT_SECONDS = 2.0

# Migrations never become unapplied while a process runs: once they are all
# applied, later probes skip the (comparatively costly) migration graph walk.
_migrations_applied = False


def check_database() -> tuple[bool, str]:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", said in the detail
        return False, f"{type(exc).__name__}: {exc}"
    return True, connections[DEFAULT_DB_ALIAS].vendor


def check_migrations() -> tuple[bool, str]:
    global _migrations_applied
    if _migrations_applied:
        return True, "applied"
    try:
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}"
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        return False, f"{len(plan)} migration(s) not applied: {names}"
    _migrations_applied = True
    return True, "applied"


def check_redis() -> tuple[bool, str]:
    """Redis carries the Celery broker and the channel layer; embedded mode has none."""
    if not settings.REDIS_URL:
        return True, "embedded (no Redis)"
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS,
                                      socket_connect_timeout=TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}"
    return True, "pong"


READINESS: dict[str, Check] = {"database": check_database, "migrations": check_migrations, "redis": check_redis}


def readiness() -> tuple[bool, dict[str, dict[str, object]]]:
    """Run every readiness check; ``(all ok, {name: {ok, detail, seconds}})``."""
    results: dict[str, dict[str, object]] = {}
    for name, check in READINESS.items():
        started = time.monotonic()
        ok, detail = check()
        results[name] = {"ok": ok, "detail": detail, "seconds": round(time.monotonic() - started, 4)}
    return all(bool(r["ok"]) for r in results.values()), results
