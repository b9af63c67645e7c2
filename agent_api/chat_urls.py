"""The chat page's path, ``/chat/`` (orchestrator/urls.py)."""

from __future__ import annotations

from django.urls import path

from agent_api import views

app_name = "chat"

urlpatterns = [
    path("", views.chat, name="page"),
]
