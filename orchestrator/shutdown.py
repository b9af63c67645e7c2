"""A worker's warm shutdown (SIGTERM: a Kubernetes rollout, a scale-down).

Celery stops taking messages and waits for the tasks it runs. A run may have
many steps to go, longer than the grace period before SIGKILL, so the runner
checks :func:`draining` at every step boundary and hands its execution back:
the step it just finished is checkpointed, the lease is released and the
execution queued again, so another worker resumes it at once from that
checkpoint, instead of after the lease expires. No step runs twice.

``orchestrator/celery.py`` starts the draining on Celery's ``worker_shutting_down``
signal, sent in the process that runs the tasks with the threads and solo
pools (the ones Loopgate's workers use; a prefork pool's children are not told).
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)
_draining = threading.Event()


def begin_draining() -> None:
    if not _draining.is_set():
        logger.info("shutting down: running executions are handed back at their next step boundary")
    _draining.set()


def draining() -> bool:
    return _draining.is_set()
