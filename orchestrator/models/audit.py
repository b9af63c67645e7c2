from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One line of the audit log: who did what, when, to which approval or execution.

    Cross-cutting, so it lives in the core: budgets, approvals and time travel all
    write it (``orchestrator.audit.audit_record``), each in the transaction of the
    change it records. The actor's name is kept as text too, so the log outlives
    deleted users; an approval is named by id (the core knows no approvals table).
    """

    class Kind(models.TextChoices):
        DECISION = "decision", "decision"
        EXPIRY = "expiry", "expired"
        CLAIM = "claim", "claimed"
        RELEASE = "release", "released"
        BUDGET = "budget", "budget change"
        LOCKOUT = "lockout", "login lockout"
        STORE = "store", "store change"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, blank=True,
                                  help_text="The username at the time; empty for Loopgate itself.")
    approval_id = models.UUIDField(null=True, blank=True, db_index=True,
                                   help_text="The approval it concerns, if one (approvals.Approval).")
    execution = models.ForeignKey("orchestrator.Execution", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    graph_name = models.CharField(max_length=200, blank=True, db_index=True)
    action = models.CharField(max_length=200, blank=True, help_text="What it was about: the action names.")
    outcome = models.CharField(max_length=40, blank=True, help_text="approved, edited, rejected, expired, …")
    detail = models.JSONField(default=dict, blank=True, help_text="The decisions, the resume value, old → new.")
    comment = models.TextField(blank=True)

    class Meta:
        db_table = "approvals_auditentry"  # where it was born; moved to the core with a state-only migration
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["actor_name", "created_at"], name="audit_actor_created")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'loopgate'} {self.kind} {self.outcome}"

    @property
    def who(self) -> str:
        return self.actor_name or "Loopgate"
