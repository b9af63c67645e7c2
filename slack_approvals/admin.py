from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from slack_approvals import services
from slack_approvals.models import SlackIdentity


@admin.register(SlackIdentity)
class SlackIdentityAdmin(admin.ModelAdmin):
    """Staff link Slack users to Loopgate users here (or with ``manage.py slack_link``): add or delete;
    a link is never edited in place, so every new one goes through ``services.identity_link``."""

    list_display = ("user", "team_id", "slack_user_id", "linked_by", "created_at")
    search_fields = ("user__username", "slack_user_id", "team_id")
    raw_id_fields = ("user",)
    fields = ("user", "team_id", "slack_user_id")

    def has_change_permission(self, request: HttpRequest, obj: SlackIdentity | None = None) -> bool:
        return False

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        identity = services.identity_link(team_id=obj.team_id, slack_user_id=obj.slack_user_id, user=obj.user,
                                          linked_by=None)
        identity.linked_by = request.user
        identity.save(update_fields=["linked_by", "updated_at"])
        obj.pk = identity.pk
