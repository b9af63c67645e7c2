from __future__ import annotations

from django.apps import AppConfig


class SlackApprovalsConfig(AppConfig):
    name = "slack_approvals"
    verbose_name = "Approvals in Slack"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from approvals import events
        from slack_approvals.listeners import on_approval_event

        events.register_listener(on_approval_event)
