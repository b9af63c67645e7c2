from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import models

# One owner of an execution's life: only code inside ``owning_status()`` (the core's
# services, orchestrator/services.py) may change ``Execution.status``. The guard below
# refuses any other write, through ``save()`` and ``QuerySet.update()`` alike, so a
# feature that set the field itself would fail the first test that ran it.
_owner = contextvars.ContextVar("loopgate_execution_status_owner", default=False)


class StatusWriteRefused(RuntimeError):
    """Code other than the core's execution services tried to change an execution's status."""


@contextlib.contextmanager
def owning_status() -> Iterator[None]:
    token = _owner.set(True)
    try:
        yield
    finally:
        _owner.reset(token)


def _check_owner() -> None:
    if not _owner.get():
        raise StatusWriteRefused(
            "Execution.status changes only through orchestrator/services.py (its execution_* functions), "
            "which queue the run and announce the change once."
        )


class ExecutionQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        if "status" in kwargs:
            _check_owner()
        return super().update(**kwargs)

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        if "status" in fields:
            _check_owner()
        return super().bulk_update(objs, fields, batch_size=batch_size)


class Execution(models.Model):
    """One run of a graph on one LangGraph thread (``thread_id = str(id)``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        INTERRUPTED = "interrupted", "waiting for review"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"
        BUDGET_EXCEEDED = "budget_exceeded", "over budget"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.INTERRUPTED)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.BUDGET_EXCEEDED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    graph_name = models.CharField(max_length=200, db_index=True)
    graph_version = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)

    input = models.JSONField(default=dict, blank=True)
    state = models.JSONField(null=True, blank=True, help_text="The last known state, JSON-safe.")
    error = models.JSONField(
        null=True, blank=True, help_text="{type, message, traceback, node, reason} when the execution failed."
    )

    tokens_used = models.BigIntegerField(default=0)
    # Tokens held for LLM calls in flight (orchestrator/budgets/guard.py): each call reserves its prompt's
    # estimate and its output cap before it is made, and settles the real figure after.
    tokens_reserved = models.BigIntegerField(default=0)
    token_budget = models.BigIntegerField(null=True, blank=True)
    recursion_limit = models.PositiveIntegerField(default=50)
    step_count = models.PositiveIntegerField(default=0)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")
    forked_from_checkpoint = models.CharField(max_length=64, blank=True)
    # A LangGraph thread shared with other executions (the LangGraph-compatible API's
    # threads carry many runs); blank: the execution's own thread, str(id).
    langgraph_thread = models.CharField(max_length=64, blank=True, db_index=True)
    # How a run on a shared thread starts, until it has written a checkpoint of its
    # own: {"input", "command", "checkpoint_id", "configurable", "context",
    # "interrupt_before", "interrupt_after"}; None for an execution on its own thread.
    run_start = models.JSONField(null=True, blank=True)

    # The runner's lease: only the worker named here may advance the execution,
    # until the lease expires and the reconciler hands it to another.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="execution_status_lease"),
            models.Index(fields=["graph_name", "created_at"], name="execution_graph_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(tokens_used__gte=0), name="execution_tokens_nonnegative"),
            # Unique anyway (the id is): it makes lease_owner a key column for PostgreSQL's row locks, so
            # a checkpoint write's lease check (FOR KEY SHARE, orchestrator/checkpointer/postgres.py)
            # makes a takeover's claim wait, and never the run's own step_count and heartbeat updates.
            models.UniqueConstraint(fields=["id", "lease_owner"], name="execution_lease_fence"),
        ]

    objects = ExecutionQuerySet.as_manager()

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any) -> Execution:
        instance = super().from_db(db, field_names, values)
        instance._saved_status = instance.__dict__.get("status")
        return instance

    def save(self, *args: Any, **kwargs: Any) -> None:
        new = self._state.adding and self.status != self.Status.QUEUED
        if new or (not self._state.adding and self.status != getattr(self, "_saved_status", self.status)):
            _check_owner()
        super().save(*args, **kwargs)
        self._saved_status = self.status

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        self._saved_status = self.__dict__.get("status")

    def __str__(self) -> str:
        return f"{self.graph_name} {self.short_id} ({self.status})"

    @property
    def thread_id(self) -> str:
        return self.langgraph_thread or str(self.id)

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()
