"""Token budgets set by admins: the default per execution, per graph, and their change log.

An execution copies its budget when it starts (``Execution.token_budget``), so a
later change here never moves the goalposts of a run already under way.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class BudgetDefault(models.Model):
    """The default token budget per execution, as admins set it: one row, id 1.

    No row means the ``LOOPGATE_DEFAULT_TOKEN_BUDGET`` setting applies.
    """

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    token_budget = models.BigIntegerField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="budgetdefault_single_row"),
            models.CheckConstraint(condition=models.Q(token_budget__gte=0), name="budgetdefault_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"default budget {self.token_budget:,} tokens"


class GraphBudget(models.Model):
    """One graph's budget per execution (empty: the default) and its optional daily token limit."""

    graph_name = models.CharField(max_length=200, unique=True)
    token_budget = models.BigIntegerField(null=True, blank=True, help_text="Per execution; empty means the default.")
    daily_token_limit = models.BigIntegerField(
        null=True, blank=True, help_text="Tokens all of the graph's executions started today may use; empty: none."
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["graph_name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(token_budget__isnull=True) | models.Q(token_budget__gte=0),
                name="graphbudget_budget_nonnegative",
            ),
            models.CheckConstraint(
                condition=models.Q(daily_token_limit__isnull=True) | models.Q(daily_token_limit__gte=0),
                name="graphbudget_daily_nonnegative",
            ),
        ]

    def __str__(self) -> str:
        return f"budget of {self.graph_name}"


class BudgetChange(models.Model):
    """One line of the budget change log: who changed what, when, from what to what.

    Written by the budget services in the same transaction as the change. The
    user's name is kept as text too, so the log outlives deleted users.
    """

    class Scope(models.TextChoices):
        DEFAULT = "default", "default budget"
        GRAPH = "graph", "graph"
        EXECUTION = "execution", "execution"

    class Field(models.TextChoices):
        TOKEN_BUDGET = "token_budget", "budget per execution"
        DAILY_TOKEN_LIMIT = "daily_token_limit", "daily token limit"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True, help_text="The username at the time.")
    scope = models.CharField(max_length=12, choices=Scope.choices)
    graph_name = models.CharField(max_length=200, blank=True, db_index=True)
    execution = models.ForeignKey(
        "orchestrator.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="budget_changes"
    )
    field = models.CharField(max_length=20, choices=Field.choices)
    old_value = models.BigIntegerField(null=True, blank=True, help_text="Empty: none (the default, or no limit).")
    new_value = models.BigIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.username or 'loopgate'} {self.scope} {self.field}: {self.old_value} → {self.new_value}"

    @property
    def who(self) -> str:
        return self.username or "Loopgate"


class TokenCharge(models.Model):
    """One LLM call charged to its execution: the ledger costs and usage pages are read from.

    Written by the budget guard (``orchestrator/budgets/guard.py``) after each call
    with the provider's figures; a call refused before it was made is kept too,
    marked ``refused``, with no tokens.
    """

    class Status(models.TextChoices):
        SETTLED = "settled", "settled"
        REFUSED = "refused", "refused"

    id = models.BigAutoField(primary_key=True)
    execution = models.ForeignKey("orchestrator.Execution", on_delete=models.CASCADE, related_name="charges")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SETTLED)
    model = models.CharField(max_length=200, blank=True)
    step = models.IntegerField(null=True, blank=True)
    node = models.CharField(max_length=200, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["execution", "model"], name="charge_execution_model")]

    def __str__(self) -> str:
        return f"{self.model} {self.input_tokens}+{self.output_tokens} ({self.status})"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
