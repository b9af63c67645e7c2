"""Writes of the Slack integration: linked identities, the messages posted, requests seen."""

from __future__ import annotations

import datetime
import logging
import re
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from orchestrator import roles
from orchestrator.errors import PermissionDenied
from slack_approvals.models import SlackIdentity, SlackMessage, SlackRequestSeen

logger = logging.getLogger(__name__)

TEAM_ID = re.compile(r"[TE][A-Z0-9]{2,30}")
USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
# Slack refuses requests whose timestamp is five minutes off; a signature seen within twice that is a replay.
REPLAY_WINDOW = datetime.timedelta(minutes=10)


def identity_link(*, team_id: str, slack_user_id: str, user: User, linked_by: User | None) -> SlackIdentity:
    """Link a Slack user (workspace ``team_id``) to ``user``: their clicks in Slack are then ``user``'s.

    ``linked_by`` is ``user`` themself (the signed link Slack showed only to them) or an admin
    (None: the ``slack_link`` command). Only an admin or the command may move a Slack user
    already linked to someone else, or replace a user's link in the same workspace.
    """
    team_id, slack_user_id = (team_id or "").strip(), (slack_user_id or "").strip()
    errors = {}
    if not TEAM_ID.fullmatch(team_id):
        errors["team_id"] = "A Slack workspace id looks like T0123ABCD."
    if not USER_ID.fullmatch(slack_user_id):
        errors["slack_user_id"] = "A Slack user id looks like U0123ABCD."
    if errors:
        raise ValidationError(errors)
    admin = linked_by is None or roles.is_admin(linked_by)
    if linked_by is not None and not admin and linked_by.id != user.id:
        raise PermissionDenied("Only admins may link someone else's Slack account.")
    with transaction.atomic():
        taken = SlackIdentity.objects.select_for_update().filter(
            Q(slack_user_id=slack_user_id) | Q(user=user), team_id=team_id)
        for identity in taken:
            if identity.user_id == user.id and identity.slack_user_id == slack_user_id:
                return identity
            if not admin:
                other = "your Loopgate account to another Slack user" if identity.user_id == user.id else \
                    "this Slack user to another Loopgate account"
                raise PermissionDenied(f"Slack already links {other}; an admin can change it.")
            identity.delete()
        identity = SlackIdentity.objects.create(team_id=team_id, slack_user_id=slack_user_id, user=user,
                                                linked_by=linked_by)
    logger.info("Slack user %s/%s linked to %s by %s", team_id, slack_user_id, user.get_username(),
                linked_by.get_username() if linked_by else "an admin command")
    return identity


def identity_unlink(*, identity_id: int, user: User | None) -> None:
    """Remove a link: its own user or an admin may (None: the ``slack_link`` command)."""
    with transaction.atomic():
        identity = SlackIdentity.objects.select_for_update().get(id=identity_id)
        if user is not None and identity.user_id != user.id and not roles.is_admin(user):
            raise PermissionDenied("Only admins may unlink someone else's Slack account.")
        identity.delete()


def message_record(*, approval_id: UUID, kind: str, channel: str, ts: str, status: str) -> SlackMessage:
    """Remember a posted message, to update it later (one per approval and kind)."""
    with transaction.atomic():
        message, _created = SlackMessage.objects.update_or_create(
            approval_id=approval_id, kind=kind, defaults={"channel": channel, "ts": ts, "rendered_status": status})
    return message


def message_rendered(*, message_id: int, status: str) -> None:
    SlackMessage.objects.filter(id=message_id).update(rendered_status=status, updated_at=timezone.now())


def request_first_seen(*, signature: str) -> bool:
    """Record a verified request's signature; False when it was seen before (a replay)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            SlackRequestSeen.objects.create(signature=signature[:100])
    except IntegrityError:
        return False
    SlackRequestSeen.objects.filter(seen_at__lt=now - REPLAY_WINDOW).delete()
    return True
