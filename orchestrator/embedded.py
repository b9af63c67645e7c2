"""The embedded worker: a real Celery worker on threads inside the server process.

With no ``REDIS_URL``, Celery's in-memory transport only reaches consumers in
the same process, and so does Channels' in-memory layer: the server starts this
worker beside Daphne, so executions still run asynchronously on Celery (never in
the web request) and their steps reach every browser live.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from orchestrator import hooks

logger = logging.getLogger(__name__)
_started = threading.Event()


def start_embedded_worker(*, threads: int | None = None) -> None:
    if _started.is_set():
        return
    _started.set()
    from orchestrator.celery import app

    concurrency = threads or settings.LOOPGATE_EMBEDDED_WORKER_THREADS
    # WorkController itself installs no signal handlers (the `celery worker`
    # command does), so it runs in a thread.
    worker = app.WorkController(
        pool_cls="threads",
        concurrency=concurrency,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname=f"embedded@{settings.ALLOWED_HOSTS[0] if settings.ALLOWED_HOSTS else 'localhost'}",
    )
    threading.Thread(target=worker.start, name="loopgate-embedded-worker", daemon=True).start()
    threading.Thread(target=_reconcile_forever, name="loopgate-embedded-reconciler", daemon=True).start()
    logger.info("embedded Celery worker started with %d threads", concurrency)


def _reconcile_forever() -> None:
    from django.db import close_old_connections

    from orchestrator.runner import executions_reconcile
    from orchestrator.store import get_store

    stop = threading.Event()
    first = True
    while not stop.wait(0.5 if first else settings.LOOPGATE_RECONCILE_SECONDS):
        try:
            # At start-up every queued or orphaned execution is ours to pick up.
            executions_reconcile(queued_older_than=0 if first else None)
            # No beat runs in embedded mode: overdue approvals expire here, and expired
            # Store items go (an indexed query on expires_at, cheap at this pace).
            hooks.human_gate().expire_overdue()
            get_store().sweep_ttl()
        except Exception:  # noqa: BLE001 - try again at the next tick
            logger.warning("reconciler tick failed", exc_info=True)
        finally:
            close_old_connections()
        first = False
