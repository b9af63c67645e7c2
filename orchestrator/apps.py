from __future__ import annotations

from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
    verbose_name = "Loopgate orchestrator"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from orchestrator.checks import check_graphs

        checks.register(check_graphs, "loopgate")

        from axes.signals import user_locked_out

        from orchestrator.throttling import audit_lockout

        user_locked_out.connect(audit_lockout, dispatch_uid="loopgate.audit_lockout")

        from orchestrator import sockets

        sockets.connect_signals()
