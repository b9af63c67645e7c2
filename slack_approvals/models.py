from __future__ import annotations

from django.conf import settings
from django.db import models


class SlackIdentity(models.Model):
    """A Slack user (one workspace's user id) linked to a Loopgate user: who a click in Slack is.

    Linked by an admin (the admin site, ``manage.py slack_link``) or by the user themself
    through the signed link Loopgate sends them in Slack; never matched by display name."""

    team_id = models.CharField(max_length=32, help_text="The Slack workspace (team) id, T…")
    slack_user_id = models.CharField(max_length=32, help_text="The Slack user id, U… or W…")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_identities")
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "Slack identities"
        constraints = [
            models.UniqueConstraint(fields=["team_id", "slack_user_id"], name="slack_identity_unique_slack_user"),
            models.UniqueConstraint(fields=["user", "team_id"], name="slack_identity_one_per_workspace"),
        ]

    def __str__(self) -> str:
        return f"{self.team_id}/{self.slack_user_id} → {self.user}"


class SlackMessage(models.Model):
    """A message Loopgate posted about an approval: the request itself, or its escalation."""

    class Kind(models.TextChoices):
        REQUEST = "request", "approval request"
        ESCALATION = "escalation", "escalation"

    approval = models.ForeignKey("approvals.Approval", on_delete=models.CASCADE, related_name="slack_messages")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.REQUEST)
    channel = models.CharField(max_length=32)
    ts = models.CharField(max_length=32, help_text="Slack's id of the message in its channel.")
    rendered_status = models.CharField(max_length=12, blank=True,
                                       help_text="The approval's status the message last showed.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["approval", "kind"], name="slack_message_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.approval_id} in {self.channel} at {self.ts}"


class SlackRequestSeen(models.Model):
    """A signed interactivity request already handled: the same signature again is a replay.
    Rows older than Slack's five-minute window are deleted as new ones come in."""

    signature = models.CharField(max_length=100, unique=True)
    seen_at = models.DateTimeField(auto_now_add=True, db_index=True)
