from __future__ import annotations

from django.apps import AppConfig


class AdvisorConfig(AppConfig):
    name = "advisor"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from advisor import panels
        from orchestrator import hooks

        # The Graphs page (core) and the execution page (traces) show the findings; neither imports us.
        hooks.register_page_panel("graph_card", panels.graph_panel)
        hooks.register_page_panel("execution", panels.execution_panel)
