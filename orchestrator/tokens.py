"""API tokens: one per user, made and revoked by admins (the tokens page, ``create_api_token``).

Tokens are Django REST framework's ``authtoken`` (``Authorization: Token <key>``):
its model, its authentication class, its admin. A token acts as its user, so the
API enforces the same roles as the pages. The key is shown in full only when it
is made; lists show its first characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from orchestrator import roles
from orchestrator.errors import PermissionDenied

PREFIX_LENGTH = 6


@dataclass(frozen=True)
class TokenRow:
    user_id: int
    username: str
    role: str
    prefix: str
    created: object


def _require_admin(actor: User | None) -> None:
    # actor=None is Loopgate itself: the management command, run by whoever runs the server.
    if actor is not None and not roles.is_admin(actor):
        raise PermissionDenied("Only admins may create and revoke API tokens.")


def api_token_create(*, username: str, actor: User | None) -> Token:
    """Make a new token for ``username``, replacing the one it had (that one stops working at once).

    Raises ``ValidationError`` on ``username`` for an unknown or inactive user.
    """
    _require_admin(actor)
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationError({"username": f"There is no user named {username!r}."})
    if not user.is_active:
        raise ValidationError({"username": f"{username} is inactive: a token would not work."})
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def api_token_get_or_create(*, username: str, actor: User | None) -> tuple[Token, bool]:
    """The user's token, made if it has none (``create_api_token`` without ``--new``)."""
    _require_admin(actor)
    token = Token.objects.filter(user__username=username).select_related("user").first()
    if token is not None and token.user.is_active:
        return token, False
    return api_token_create(username=username, actor=actor), True


def api_token_revoke(*, user_id: int, actor: User | None) -> bool:
    """Delete the user's token; True if it had one."""
    _require_admin(actor)
    deleted, _ = Token.objects.filter(user_id=user_id).delete()
    return deleted > 0


def api_token_list(*, actor: User | None) -> list[TokenRow]:
    _require_admin(actor)
    tokens = Token.objects.select_related("user").order_by("user__username")
    return [
        TokenRow(user_id=t.user_id, username=t.user.username, role=roles.role_label(t.user),
                 prefix=t.key[:PREFIX_LENGTH], created=t.created)
        for t in tokens
    ]
