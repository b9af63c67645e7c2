"""Writes of the approvals app. The runner hands interrupts over through here."""

from __future__ import annotations

from typing import Any, TypedDict
from uuid import UUID

from django.db import transaction

from approvals import payloads
from approvals.models import Approval


class PendingInterrupt(TypedDict):
    id: str
    value: Any
    node: str
    checkpoint_id: str
    checkpoint_ns: str
    response_schema: Any


def approval_create_for_interrupts(*, execution_id: UUID, interrupts: list[PendingInterrupt]) -> list[Approval]:
    """Make one pending approval per interrupt; an interrupt seen before keeps
    its approval (unique per execution and interrupt id), so a re-run never
    duplicates one. Call inside the runner's transaction."""
    from orchestrator.jsonable import to_jsonable

    rows = []
    for item in interrupts:
        value = to_jsonable(item["value"])
        fmt, actions = payloads.parse(value, to_jsonable(item.get("response_schema")))
        rows.append(
            Approval(
                execution_id=execution_id,
                interrupt_id=item["id"],
                node=item["node"],
                checkpoint_id=item["checkpoint_id"],
                checkpoint_ns=item.get("checkpoint_ns", ""),
                format=fmt,
                payload=value,
                actions=actions,
                deadline=payloads.deadline_from(value),
            )
        )
    with transaction.atomic():
        Approval.objects.bulk_create(rows, ignore_conflicts=True)
        return list(
            Approval.objects.filter(execution_id=execution_id, interrupt_id__in=[i["id"] for i in interrupts])
        )


def approval_create_for_breakpoint(
    *, execution_id: UUID, checkpoint_id: str, nodes: list[str], when: str
) -> Approval:
    interrupt_id = f"breakpoint:{checkpoint_id}"
    with transaction.atomic():
        approval, _ = Approval.objects.get_or_create(
            execution_id=execution_id,
            interrupt_id=interrupt_id,
            defaults={
                "node": ", ".join(nodes),
                "checkpoint_id": checkpoint_id,
                "format": Approval.Format.BREAKPOINT,
                "payload": {"breakpoint": when, "nodes": nodes},
                "actions": payloads.breakpoint_actions(nodes, when),
            },
        )
    return approval


def approval_resume_map(*, execution_id: UUID, interrupt_ids: list[str]) -> dict[str, Any] | None:
    """The resume value for every pending interrupt, or None while any is undecided.

    LangGraph refuses a partial answer while several interrupts are pending, so
    the graph resumes only once all of them are decided.
    """
    approvals = {
        a.interrupt_id: a
        for a in Approval.objects.filter(execution_id=execution_id, interrupt_id__in=interrupt_ids)
    }
    if len(approvals) < len(set(interrupt_ids)):
        return None
    if any(a.status not in Approval.DECIDED for a in approvals.values()):
        return None
    return {interrupt_id: approvals[interrupt_id].resume_value for interrupt_id in interrupt_ids}


def approvals_cancel_for_execution(*, execution_id: UUID) -> int:
    return Approval.objects.filter(execution_id=execution_id, status=Approval.Status.PENDING).update(
        status=Approval.Status.CANCELLED
    )
