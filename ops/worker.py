"""What a ``celery worker`` process adds for operations, started on Celery's ``worker_ready``:

- a heartbeat file, touched every ``LOOPGATE_WORKER_HEARTBEAT_SECONDS`` while the
  worker's database answers; ``python -m ops.probe`` (a Kubernetes exec probe)
  fails when it grows older than its ``--max-age``;
- its event metrics on ``LOOPGATE_WORKER_METRICS_PORT`` (0: none).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)
_stop = threading.Event()


def _beat(path: Path, interval: float) -> None:
    while True:
        try:
            close_old_connections()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            path.touch()
        except Exception:  # noqa: BLE001 - the file ages, and the probe says so
            logger.warning("worker heartbeat: the database did not answer", exc_info=True)
        finally:
            close_old_connections()
        if _stop.wait(interval):
            return


def on_worker_ready(**kwargs: Any) -> None:
    path = settings.LOOPGATE_WORKER_HEARTBEAT_FILE
    if path:
        thread = threading.Thread(target=_beat, args=(Path(path), float(settings.LOOPGATE_WORKER_HEARTBEAT_SECONDS)),
                                  name="loopgate-heartbeat", daemon=True)
        thread.start()
        logger.info("worker heartbeat: touching %s every %s s", path, settings.LOOPGATE_WORKER_HEARTBEAT_SECONDS)
    port = settings.LOOPGATE_WORKER_METRICS_PORT
    if port:
        from prometheus_client import start_http_server

        from ops.metrics import process_registry

        start_http_server(port, registry=process_registry())
        logger.info("worker metrics on :%d/metrics", port)


def on_worker_shutdown(**kwargs: Any) -> None:
    _stop.set()
    path = settings.LOOPGATE_WORKER_HEARTBEAT_FILE
    if path:
        Path(path).unlink(missing_ok=True)


def connect_worker_signals() -> None:
    from celery.signals import worker_ready, worker_shutdown

    worker_ready.connect(on_worker_ready, dispatch_uid="ops.worker.ready", weak=False)
    worker_shutdown.connect(on_worker_shutdown, dispatch_uid="ops.worker.shutdown", weak=False)
