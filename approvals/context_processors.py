"""The pending-approvals count in the top bar, on every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from approvals import selectors


def nav(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if not selectors.approvals_visible_to(user=user):
        return {}
    return {"nav_pending_count": selectors.approval_pending_count(user=user)}
