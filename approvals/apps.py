from __future__ import annotations

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orchestrator import gates

        gates.register_seen_provider(_nodes_that_interrupted)


def _nodes_that_interrupted(graph_name: str) -> list[str]:
    """Nodes of the graph that stopped for a person in any execution (time travel treats them as gates)."""
    from approvals.models import Approval

    return list(
        Approval.objects.filter(execution__graph_name=graph_name).exclude(format=Approval.Format.BREAKPOINT)
        .values_list("node", flat=True).distinct()
    )
