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
