from __future__ import annotations

from orchestrator.models.execution import Execution

__all__ = ["Execution"]
