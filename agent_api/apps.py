from __future__ import annotations

from django.apps import AppConfig


class AgentApiConfig(AppConfig):
    name = "agent_api"
    verbose_name = "LangGraph-compatible API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orchestrator import hooks

        hooks.register_status_listener(_run_stopped)


def _run_stopped(execution_id: object, status: str) -> None:
    """After commit, once per status change: whoever waits on the run wakes; a run that stopped calls
    its webhook."""
    from agent_api import services, wakeup, webhooks
    from orchestrator.models import Execution

    wakeup.notify(execution_id)
    webhooks.queue_for(execution_id, status)
    if status in Execution.FINISHED:
        services.runs_start_queued(execution_id=execution_id)
