"""Writes of the advisor: dismissing a finding for a graph, and undoing that."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from advisor import rules
from advisor.models import Dismissal
from orchestrator import registry, roles
from orchestrator.errors import GraphBroken, PermissionDenied

_KEY = re.compile(r"^(?P<kind>[a-z_]+):(?P<subject>[^\x00-\x1f\x7f]{1,250})$")


def _check(*, graph_name: str, key: str, user: User) -> None:
    if not roles.can_operate(user):
        raise PermissionDenied("Only operators and admins may dismiss or restore the advisor's findings.")
    try:
        registry.get_graph(graph_name)  # raises GraphNotFound for a name that is not registered
    except GraphBroken:
        pass  # a graph that no longer loads still has its past executions' findings to dismiss
    match = _KEY.match(key)
    if match is None or match["kind"] not in rules.KINDS:
        raise ValidationError({"key": f"Not a finding: expected <kind>:<subject>, kind one of {', '.join(rules.KINDS)}."})


def finding_dismiss(*, graph_name: str, key: str, user: User, title: str = "") -> Dismissal:
    """Hide the finding ``key`` for every execution of ``graph_name``, recording who and when.

    Dismissing what is already dismissed returns the standing dismissal (two clicks, one row)."""
    _check(graph_name=graph_name, key=key, user=user)
    try:
        with transaction.atomic():
            return Dismissal.objects.create(graph_name=graph_name, key=key, title=title[:300], dismissed_by=user,
                                            dismissed_by_name=user.get_username(), dismissed_at=timezone.now())
    except IntegrityError:  # someone dismissed it first: the unique constraint settles the race
        return Dismissal.objects.get(graph_name=graph_name, key=key)


def finding_restore(*, graph_name: str, key: str, user: User) -> bool:
    """Undo a dismissal: the finding shows again. Returns whether one was there to undo."""
    _check(graph_name=graph_name, key=key, user=user)
    with transaction.atomic():
        deleted, _ = Dismissal.objects.filter(graph_name=graph_name, key=key).delete()
    return deleted > 0
