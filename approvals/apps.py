from __future__ import annotations

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from approvals.gate import ApprovalsGate
        from orchestrator import hooks

        hooks.register_human_gate(ApprovalsGate())
