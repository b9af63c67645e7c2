"""Retention: bound the growth of finished executions and their checkpoints, per graph.

Two rules, from the settings (``graph=number``, ``*`` for every other graph):

- ``LOOPGATE_RETENTION_DAYS``: a finished execution older than N days is deleted,
  with its checkpoints (through the checkpointer), steps, spans and approvals.
  An execution that still has a fork is kept (the fork's lineage and compare
  views start from it); audit lines stay, naming the graph and who acted.
- ``LOOPGATE_RETENTION_KEEP_CHECKPOINTS``: of a finished execution, only the last
  K checkpoints stay, through the checkpointer's ``prune_keeping``, plus every
  checkpoint something points at: an approval, a fork made from it, an audit
  line, and the newest of each namespace. So every approval, fork and audit link
  still opens.

What was removed is one audit line (kind ``retention``) per run that removed
anything, which admins see in the audit log and ``/metrics`` counts.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from orchestrator.models import Execution

logger = logging.getLogger(__name__)
AUDIT_KIND = "retention"
BATCH = 200


def _audit_model() -> Any:
    from orchestrator.models import AuditEntry

    return AuditEntry


@dataclass
class RetentionResult:
    executions: int = 0
    checkpoints: int = 0
    by_graph: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, graph: str, kind: str, n: int) -> None:
        setattr(self, kind, getattr(self, kind) + n)
        counts = self.by_graph.setdefault(graph, {"executions": 0, "checkpoints": 0})
        counts[kind] += n


def policy_for(graph_name: str, rules: dict[str, int]) -> int | None:
    return rules.get(graph_name, rules.get("*"))


def protected_checkpoints(execution: Execution, checkpoint_ids: set[str]) -> set[str]:
    """The checkpoints of this execution's thread that something points at."""
    from approvals.models import Approval

    keep = set(Approval.objects.filter(execution=execution).exclude(checkpoint_id="")
               .values_list("checkpoint_id", flat=True))
    keep |= set(Execution.objects.filter(parent=execution).exclude(forked_from_checkpoint="")
                .values_list("forked_from_checkpoint", flat=True))
    if execution.forked_from_checkpoint:
        keep.add(execution.forked_from_checkpoint)  # a fork's thread holds the checkpoint it was made from
    # Audit lines name checkpoints in their detail (fork decisions, holds): keep whichever they name.
    details = _audit_model().objects.filter(execution_id=execution.id).values_list("detail", flat=True)
    text = json.dumps(list(details), default=str)
    keep |= {checkpoint_id for checkpoint_id in checkpoint_ids if checkpoint_id in text}
    return keep


def _graphs() -> list[str]:
    return list(Execution.objects.order_by().values_list("graph_name", flat=True).distinct())


def _delete_old_executions(now: datetime.datetime, result: RetentionResult, dry_run: bool) -> None:
    from orchestrator.checkpointer import get_checkpointer

    rules = settings.LOOPGATE_RETENTION_DAYS
    if not rules:
        return
    saver = get_checkpointer()
    for graph in _graphs():
        days = policy_for(graph, rules)
        if days is None:
            continue
        old = (Execution.objects.filter(graph_name=graph, status__in=Execution.FINISHED,
                                        finished_at__lt=now - datetime.timedelta(days=days))
               .annotate(n_forks=Count("forks")).filter(n_forks=0).order_by("finished_at"))
        for execution_id in list(old.values_list("id", flat=True)[:BATCH]):
            if not dry_run:
                with transaction.atomic():
                    # Re-checked under the row lock: a fork made since the query keeps it.
                    row = Execution.objects.select_for_update().filter(id=execution_id).first()
                    if row is None or Execution.objects.filter(parent_id=execution_id).exists():
                        continue
                    saver.delete_thread(str(execution_id))
                    row.delete()
            result.add(graph, "executions", 1)


def _prune_checkpoints(result: RetentionResult, dry_run: bool) -> None:
    from orchestrator.checkpointer import get_checkpointer
    from orchestrator.models.checkpoints import Checkpoint as CheckpointRow

    rules = settings.LOOPGATE_RETENTION_KEEP_CHECKPOINTS
    if not rules:
        return
    saver = get_checkpointer()
    for graph in _graphs():
        keep_last = policy_for(graph, rules)
        if keep_last is None:
            continue
        finished = (Execution.objects.filter(graph_name=graph, status__in=Execution.FINISHED)
                    .annotate(thread=Cast("id", TextField())).values("thread"))
        # Every candidate, not a batch: a thread that keeps more than K for its protected
        # checkpoints stays a candidate, and must not starve the others.
        threads = (CheckpointRow.objects.order_by("thread_id").filter(thread_id__in=finished)
                   .values("thread_id").annotate(n=Count("id")).filter(n__gt=keep_last))
        for row in list(threads):  # thread ids and counts only: small, and read before any write
            execution = Execution.objects.get(id=row["thread_id"])
            ids = list(CheckpointRow.objects.filter(thread_id=row["thread_id"], checkpoint_ns="")
                       .order_by("-checkpoint_id").values_list("checkpoint_id", flat=True))
            all_ids = set(CheckpointRow.objects.filter(thread_id=row["thread_id"]).values_list("checkpoint_id", flat=True))
            keep = set(ids[:keep_last]) | protected_checkpoints(execution, all_ids)
            if dry_run:
                removed = len(all_ids - keep)
            else:
                removed = saver.prune_keeping(row["thread_id"], sorted(keep))
            if removed:
                result.add(graph, "checkpoints", removed)


def retention_apply(*, now: datetime.datetime | None = None, dry_run: bool = False) -> RetentionResult:
    """Apply the retention settings once; record what was removed in one audit line (and the metrics).

    Each execution deleted and each thread pruned is its own transaction, so a
    long run holds no lock for long and a crash leaves every thread whole.
    """
    now = now or timezone.now()
    result = RetentionResult()
    _delete_old_executions(now, result, dry_run)
    _prune_checkpoints(result, dry_run)
    if (result.executions or result.checkpoints) and not dry_run:
        from ops import metrics

        from orchestrator.audit import audit_record

        audit_record(
            kind=AUDIT_KIND, actor=None, outcome="removed",
            action=f"{result.executions} execution(s), {result.checkpoints} checkpoint(s)",
            detail={"executions": result.executions, "checkpoints": result.checkpoints, "by_graph": result.by_graph},
        )
        metrics.RETENTION_REMOVED.labels(kind="executions").inc(result.executions)
        metrics.RETENTION_REMOVED.labels(kind="checkpoints").inc(result.checkpoints)
        logger.info("retention removed %d execution(s) and %d checkpoint(s)", result.executions, result.checkpoints)
    return result


def removed_totals() -> dict[str, int]:
    """Everything retention removed so far, from its audit lines (for /metrics)."""
    totals = {"executions": 0, "checkpoints": 0}
    for detail in _audit_model().objects.filter(kind=AUDIT_KIND).values_list("detail", flat=True):
        for kind in totals:
            totals[kind] += int((detail or {}).get(kind, 0) or 0)
    return totals
