"""Reads shared by views, APIs, consumers and tasks, with their permission checks."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404

from orchestrator import roles
from orchestrator.models import Execution


def execution_list_for_user(*, user) -> QuerySet[Execution]:  # type: ignore[no-untyped-def]
    """Every role may read every execution; users without a role see none."""
    if not roles.user_roles(user):
        return Execution.objects.none()
    return Execution.objects.select_related("created_by").order_by("-created_at")


def graph_entries_for_user(*, user) -> list:  # type: ignore[no-untyped-def]
    """The registered graphs (broken ones too) a user may see: every role sees them all, users without a
    role none (the Graphs page and the API follow this one rule)."""
    from orchestrator import registry

    if not roles.user_roles(user):
        return []
    return registry.all_entries()


def execution_get_for_user(*, user, execution_id: UUID) -> Execution:  # type: ignore[no-untyped-def]
    try:
        return execution_list_for_user(user=user).get(id=execution_id)
    except Execution.DoesNotExist:
        raise Http404("No such execution.") from None
