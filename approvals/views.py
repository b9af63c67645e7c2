from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from orchestrator.types import AuthedRequest


@require_GET
def inbox(request: AuthedRequest) -> HttpResponse:
    return render(request, "approvals/inbox.html", {"approvals": []})
