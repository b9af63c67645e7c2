from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


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
    token_budget = models.BigIntegerField(null=True, blank=True)
    recursion_limit = models.PositiveIntegerField(default=50)
    step_count = models.PositiveIntegerField(default=0)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")
    forked_from_checkpoint = models.CharField(max_length=64, blank=True)

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
        ]

    def __str__(self) -> str:
        return f"{self.graph_name} {self.short_id} ({self.status})"

    @property
    def thread_id(self) -> str:
        return str(self.id)

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
