from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Approval(models.Model):
    """One pending LangGraph interrupt (or static breakpoint) that people decide."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        APPROVED = "approved", "approved"
        EDITED = "edited", "edited"
        REJECTED = "rejected", "rejected"
        RESPONDED = "responded", "responded"
        EXPIRED = "expired", "expired"
        CANCELLED = "cancelled", "cancelled"

    class Format(models.TextChoices):
        HITL = "hitl", "LangChain HumanInTheLoopMiddleware"
        TOOL_APPROVAL = "tool_approval", "LangChain tool approval"
        AGENT_INBOX = "agent_inbox", "Agent Inbox HumanInterrupt"
        PLAIN = "plain", "plain value"
        BREAKPOINT = "breakpoint", "static breakpoint"

    DECIDED = (Status.APPROVED, Status.EDITED, Status.REJECTED, Status.RESPONDED, Status.EXPIRED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    execution = models.ForeignKey("orchestrator.Execution", on_delete=models.CASCADE, related_name="approvals")
    interrupt_id = models.CharField(max_length=200)
    node = models.CharField(max_length=200, blank=True)
    checkpoint_id = models.CharField(max_length=64, blank=True)
    checkpoint_ns = models.CharField(max_length=255, blank=True, default="")
    format = models.CharField(max_length=20, choices=Format.choices, default=Format.PLAIN)
    payload = models.JSONField(null=True, blank=True, help_text="The interrupt value as the graph gave it.")
    actions = models.JSONField(default=list, blank=True, help_text="[{name, args, description, allowed_decisions, args_schema}]")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    deadline = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision = models.JSONField(null=True, blank=True, help_text="The decisions as Loopgate received them.")
    resume_value = models.JSONField(null=True, blank=True, help_text="What the graph is resumed with.")
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "interrupt_id"], name="approval_unique_interrupt"),
        ]

    def __str__(self) -> str:
        return f"approval {str(self.id)[:8]} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING
