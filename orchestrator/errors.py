"""Errors that services raise and interfaces turn into messages and 4xx answers."""

from __future__ import annotations

from typing import Any


class LoopgateError(Exception):
    """A domain error with a stable machine-readable code and a human message."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra or {}

    def __str__(self) -> str:
        return self.message


class GraphNotFound(LoopgateError):
    code = "graph_not_found"
    status = 404


class GraphBroken(LoopgateError):
    code = "graph_broken"
    status = 409


class InvalidState(LoopgateError):
    """The operation does not apply to the object in its current status."""

    code = "invalid_state"
    status = 409


class LeaseLost(LoopgateError):
    code = "lease_lost"
    status = 409


class BudgetExceeded(LoopgateError):
    code = "budget_exceeded"
    status = 409


class PermissionDenied(LoopgateError):
    code = "permission_denied"
    status = 403


class AlreadyDecided(LoopgateError):
    """The approval is no longer pending: someone decided first (or it expired).

    ``.approval`` is the approval as it now stands, so the loser can be told who
    decided, when and what.
    """

    code = "already_decided"
    status = 409

    def __init__(self, approval: Any, message: str | None = None) -> None:
        who = getattr(getattr(approval, "decided_by", None), "username", "") or "nobody"
        status = getattr(approval, "status", "")
        super().__init__(
            message or f"This approval was already {status} by {who}.",
            extra={
                "approval_id": str(getattr(approval, "id", "")),
                "status": status,
                "decided_by": who,
                "decided_at": approval.decided_at.isoformat() if getattr(approval, "decided_at", None) else None,
            },
        )
        self.approval = approval
