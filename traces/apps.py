from __future__ import annotations

from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orchestrator import hooks
        from traces.observer import TraceObserver

        hooks.register_run_observer(TraceObserver)
        hooks.register_status_listener(_announce_status)


def _announce_status(execution_id: object, status: str) -> None:
    """Every open trace page and executions list hears of a status change (traces/live.py)."""
    from traces import live

    live.announce_execution(execution_id, status)
