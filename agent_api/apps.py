from __future__ import annotations

from django.apps import AppConfig


class AgentApiConfig(AppConfig):
    name = "agent_api"
    verbose_name = "LangGraph-compatible API"
    default_auto_field = "django.db.models.BigAutoField"
