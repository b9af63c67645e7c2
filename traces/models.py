from __future__ import annotations

import uuid

from django.db import models


class Step(models.Model):
    """One LangGraph super-step of an execution: the checkpoint it produced,
    the updates its nodes wrote and the diff of the whole state."""

    id = models.BigAutoField(primary_key=True)
    execution = models.ForeignKey("orchestrator.Execution", on_delete=models.CASCADE, related_name="steps")
    step = models.IntegerField(help_text="LangGraph's step number (metadata['step']).")
    nodes = models.JSONField(default=list)
    checkpoint_id = models.CharField(max_length=64)
    parent_checkpoint_id = models.CharField(max_length=64, blank=True)
    checkpoint_ns = models.CharField(max_length=255, blank=True, default="")
    update = models.JSONField(default=dict, blank=True, help_text="{node: the update it wrote}")
    diff = models.JSONField(default=list, blank=True)
    tokens = models.BigIntegerField(default=0)
    bytes_written = models.BigIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "step", "id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "checkpoint_id"], name="step_unique_checkpoint"),
        ]
        indexes = [models.Index(fields=["execution", "step"], name="step_execution_step")]

    def __str__(self) -> str:
        return f"step {self.step} ({', '.join(self.nodes)})"

    @property
    def node(self) -> str:
        return ", ".join(self.nodes)

    @property
    def duration_ms(self) -> int:
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


class Span(models.Model):
    """A timed unit of work: a node run, and under it LLM, tool and routing calls."""

    class Kind(models.TextChoices):
        NODE = "node", "node"
        LLM = "llm", "LLM call"
        TOOL = "tool", "tool call"
        ROUTER = "router", "routing decision"

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        OK = "ok", "ok"
        ERROR = "error", "error"
        INTERRUPTED = "interrupted", "interrupted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    execution = models.ForeignKey("orchestrator.Execution", on_delete=models.CASCADE, related_name="spans")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OK)
    step = models.IntegerField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, db_index=True)
    checkpoint_ns = models.CharField(max_length=255, blank=True, default="")
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    attributes = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]
        indexes = [models.Index(fields=["execution", "started_at"], name="span_execution_started")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def duration_ms(self) -> int | None:
        if self.ended_at is None:
            return None
        return int((self.ended_at - self.started_at).total_seconds() * 1000)
