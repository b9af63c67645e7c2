from __future__ import annotations

from uuid import UUID

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from orchestrator import selectors
from orchestrator.types import AuthedRequest


@require_GET
def executions(request: AuthedRequest) -> HttpResponse:
    page = selectors.execution_list_for_user(user=request.user)
    return render(request, "traces/executions.html", {"executions": page})


@require_GET
def execution_detail(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    execution = selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
    return render(request, "traces/execution.html", {"execution": execution})
