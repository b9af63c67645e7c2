from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from orchestrator import roles
from orchestrator.types import AuthedRequest


@require_GET
def home(request: AuthedRequest) -> HttpResponse:
    """Reviewers land on their inbox, everyone else on the executions."""
    if roles.can_decide(request.user) and not roles.is_admin(request.user):
        return redirect("approvals:inbox")
    return redirect("traces:executions")


@require_GET
def graph_list(request: AuthedRequest) -> HttpResponse:
    return render(request, "orchestrator/graphs.html", {"graphs": []})


@require_GET
@roles.admin_required
def budgets(request: AuthedRequest) -> HttpResponse:
    from django.conf import settings

    return render(request, "orchestrator/budgets.html", {"default_budget": settings.LOOPGATE_DEFAULT_TOKEN_BUDGET})
