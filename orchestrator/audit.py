"""The audit log's one writer: every decision, claim, expiry and budget change is a line here."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.models import User

from orchestrator.models import AuditEntry


def audit_record(
    *,
    kind: str,
    actor: User | None,
    approval_id: UUID | None = None,
    execution_id: UUID | None = None,
    graph_name: str = "",
    action: str = "",
    outcome: str = "",
    detail: dict[str, Any] | None = None,
    comment: str = "",
) -> AuditEntry:
    """One audit line. Call inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        kind=kind,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        approval_id=approval_id,
        execution_id=execution_id,
        graph_name=graph_name,
        action=action[:200],
        outcome=outcome,
        detail=detail or {},
        comment=comment,
    )
