from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


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
        # Settled by time travel: a fork wrote past the gate this approval guards, and someone
        # who may decide it let the fork go on in its place (see approvals_settle_by_fork).
        FORKED = "forked", "continued in a fork"

    class Format(models.TextChoices):
        HITL = "hitl", "LangChain HumanInTheLoopMiddleware"
        TOOL_APPROVAL = "tool_approval", "LangChain tool approval"
        AGENT_INBOX = "agent_inbox", "Agent Inbox HumanInterrupt"
        PLAIN = "plain", "plain value"
        BREAKPOINT = "breakpoint", "static breakpoint"

    DECIDED = (Status.APPROVED, Status.EDITED, Status.REJECTED, Status.RESPONDED, Status.EXPIRED, Status.FORKED)

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
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the escalation group was told it expired unanswered."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "interrupt_id"], name="approval_unique_interrupt"),
        ]
        indexes = [models.Index(fields=["status", "deadline"], name="approval_status_deadline")]

    def __str__(self) -> str:
        return f"approval {str(self.id)[:8]} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def is_high_stakes(self) -> bool:
        """Marked high-stakes by the graph: ``"high_stakes": true`` in the interrupt's payload (or in one of
        its action requests), or a graph listed in ``LOOPGATE_HIGH_STAKES_GRAPHS``. One key does not decide it."""
        from django.conf import settings

        graphs = getattr(settings, "LOOPGATE_HIGH_STAKES_GRAPHS", []) or []
        if "*" in graphs or (graphs and self.execution_id and self.execution.graph_name in graphs):
            return True
        payload = self.payload
        requests = payload.get("action_requests") if isinstance(payload, dict) else payload
        flagged = [payload] + (list(requests) if isinstance(requests, list) else [])
        return any(isinstance(item, dict) and item.get("high_stakes") is True for item in flagged)

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]

    @property
    def title(self) -> str:
        """The action names, as the inbox shows them in bold: ``send_email`` or ``send_email + 1 more``."""
        names = [str(a.get("name", "")) for a in self.actions or [] if isinstance(a, dict)] or [self.node or "review"]
        return names[0] if len(names) == 1 else f"{names[0]} + {len(names) - 1} more"

    @property
    def summary(self) -> str:
        """One line of the first action's arguments: ``to: alice@example.com, subject: Q3 report``."""
        actions = [a for a in self.actions or [] if isinstance(a, dict)]
        if not actions:
            return ""
        from approvals.payloads import ordered

        args = actions[0].get("args") or {}
        if not args:
            return _clip(str(actions[0].get("description") or ""), 120)
        parts = []
        for key in ordered(args, actions[0]):  # type: ignore[arg-type]
            value = args[key]
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            parts.append(f"{key}: {_clip(' '.join(str(text).split()), 48)}")
        return _clip(", ".join(parts), 120)

    @property
    def urgency(self) -> str:
        """``ok``, ``soon`` (amber) or ``late`` (red): how near the deadline is, or how long it has waited."""
        now = timezone.now()
        if self.deadline is not None:
            window = (self.deadline - self.created_at).total_seconds()
            used = (now - self.created_at).total_seconds()
            if window <= 0 or used >= 0.9 * window:
                return "late"
            return "soon" if used >= 0.6 * window else "ok"
        waited = (now - self.created_at).total_seconds()
        return "late" if waited >= 24 * 3600 else "soon" if waited >= 2 * 3600 else "ok"

    @property
    def decision_types(self) -> list[str]:
        """The decision type per action, as recorded (``[]`` while pending)."""
        return [str(d.get("type", "")) for d in self.decision or [] if isinstance(d, dict)]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
