"""The three roles, as Django groups, and the checks every interface shares."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

ADMINS = "admins"
REVIEWERS = "reviewers"
OPERATORS = "operators"
ROLES = (ADMINS, REVIEWERS, OPERATORS)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_loopgate_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(ROLES)  # type: ignore[attr-defined]
        if user.is_superuser:  # type: ignore[attr-defined]
            cached.add(ADMINS)
        user._loopgate_roles = cached  # type: ignore[union-attr]
    return cached


def is_admin(user: Any) -> bool:
    return ADMINS in user_roles(user)


def can_decide(user: Any) -> bool:
    return bool(user_roles(user) & {ADMINS, REVIEWERS})


def can_operate(user: Any) -> bool:
    """Start, cancel and fork executions."""
    return bool(user_roles(user) & {ADMINS, OPERATORS})


def role_label(user: Any) -> str:
    roles = user_roles(user)
    for role, label in ((ADMINS, "admin"), (REVIEWERS, "reviewer"), (OPERATORS, "operator")):
        if role in roles:
            return label
    return "no role"


def admin_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapper(request, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not is_admin(request.user):
            raise PermissionDenied("Only admins may open this page.")
        return view(request, *args, **kwargs)

    return wrapper
