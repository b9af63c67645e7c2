from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: health probes, Prometheus metrics, retention and repair of stuck executions."""

    name = "ops"
    verbose_name = "Loopgate operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ops import metrics, worker

        metrics.connect_event_metrics()
        worker.connect_worker_signals()
