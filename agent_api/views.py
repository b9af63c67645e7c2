"""The chat page: a React page (clients/js/src/chat.jsx, bundled into static/chat/) on LangGraph's
``useStream`` hook, talking to this server's LangGraph-compatible API with the user's session."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from orchestrator import roles
from orchestrator.types import AuthedRequest


@require_GET
@ensure_csrf_cookie
def chat(request: AuthedRequest) -> HttpResponse:
    # The page calls /langgraph/ with the session cookie and the CSRF token (SessionAuthentication
    # checks it on every write): no API token ever reaches the browser.
    ctx = {"can_start": roles.can_operate(request.user), "can_decide": roles.can_decide(request.user)}
    return render(request, "agent_api/chat.html", ctx)
