"""The approvals app as the core's human gate (``orchestrator.hooks.HumanGate``).

The runner hands every interrupt over here, asks what people decided, and tells
us when an execution ended; time travel asks which nodes ask people and holds
forks that wrote past one. Each method is a thin door to approvals/services.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction

from approvals import live, services
from approvals.models import Approval
from orchestrator import gates
from orchestrator.hooks import PendingInterrupt
from orchestrator.models import Execution


class ApprovalsGate:
    def hand_over(self, *, execution_id: UUID, interrupts: list[PendingInterrupt]) -> list[bool]:
        rows = services.approval_create_for_interrupts(execution_id=execution_id, interrupts=interrupts)
        transaction.on_commit(live.announce_approvals_changed)
        return [not row.is_pending for row in rows]

    def hold(self, *, execution_id: UUID, checkpoint_id: str, nodes: list[str], when: str) -> bool:
        row = services.approval_create_for_breakpoint(execution_id=execution_id, checkpoint_id=checkpoint_id,
                                                      nodes=nodes, when=when)
        transaction.on_commit(live.announce_approvals_changed)
        return not row.is_pending

    def hold_status(self, *, execution_id: UUID, checkpoint_id: str) -> str | None:
        return (Approval.objects.filter(execution_id=execution_id, interrupt_id=gates.hold_interrupt_id(checkpoint_id))
                .values_list("status", flat=True).first())

    def resume_map(self, *, execution_id: UUID, interrupt_ids: list[str]) -> dict[str, Any] | None:
        return services.approval_resume_map(execution_id=execution_id, interrupt_ids=interrupt_ids)

    def cancel_pending(self, *, execution_id: UUID) -> int:
        cancelled = services.approvals_cancel_for_execution(execution_id=execution_id)
        if cancelled:
            transaction.on_commit(live.announce_approvals_changed)
        return cancelled

    def nodes_seen(self, graph_name: str) -> Iterable[str]:
        return (Approval.objects.filter(execution__graph_name=graph_name).exclude(format=Approval.Format.BREAKPOINT)
                .values_list("node", flat=True).distinct())

    def hold_fork(self, *, fork: Execution, parent: Execution, checkpoint_id: str, gate: str, reason: str,
                  values: Any, user: User | None) -> None:
        services.approval_create_for_fork_hold(execution_id=fork.id, checkpoint_id=checkpoint_id, gate=gate,
                                               reason=reason, values=values, parent=parent, forked_by=user)

    def settle_by_fork(self, *, parent_id: UUID, fork_id: UUID, gate: str, user: User,
                       detail: dict[str, Any]) -> int:
        return len(services.approvals_settle_by_fork(parent_id=parent_id, fork_id=fork_id, gate=gate, user=user,
                                                     detail=detail))

    def expire_overdue(self) -> int:
        return services.approvals_expire_overdue()
