"""Reads of the Slack integration."""

from __future__ import annotations

from django.contrib.auth.models import User

from approvals.models import Approval
from slack_approvals.models import SlackIdentity, SlackMessage


def identity_user(*, team_id: str, slack_user_id: str) -> User | None:
    """The active Loopgate user this Slack user is linked to, or None (never guessed from a name)."""
    identity = (SlackIdentity.objects.select_related("user")
                 .filter(team_id=team_id, slack_user_id=slack_user_id, user__is_active=True).first())
    return identity.user if identity is not None else None


def identities_of(user: User) -> list[SlackIdentity]:
    return list(SlackIdentity.objects.filter(user=user).order_by("team_id"))


def slack_user_of(username: str) -> str | None:
    """The Slack user id linked to the active Loopgate user ``username``, if any."""
    return (SlackIdentity.objects.filter(user__username=username, user__is_active=True)
            .order_by("created_at").values_list("slack_user_id", flat=True).first())


def approval_for_slack(approval_id: object) -> Approval | None:
    return (Approval.objects.select_related("execution", "decided_by").filter(id=approval_id).first())


def message_of(approval_id: object, kind: str = SlackMessage.Kind.REQUEST) -> SlackMessage | None:
    return SlackMessage.objects.filter(approval_id=approval_id, kind=kind).first()
