from __future__ import annotations

from orchestrator.models.audit import AuditEntry as AuditEntry

from orchestrator.models.budgets import BudgetChange as BudgetChange, BudgetDefault as BudgetDefault
from orchestrator.models.budgets import GraphBudget as GraphBudget
from orchestrator.models.budgets import TokenCharge as TokenCharge
from orchestrator.models.checkpoints import Checkpoint as Checkpoint
from orchestrator.models.checkpoints import CheckpointBlob as CheckpointBlob
from orchestrator.models.checkpoints import CheckpointWrite as CheckpointWrite
from orchestrator.models.execution import Execution
from orchestrator.models.store import StoreItem as StoreItem, StoreVector as StoreVector

__all__ = ["Execution"]
