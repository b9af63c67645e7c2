from __future__ import annotations

from django.conf import settings
from django.db import models


class Dismissal(models.Model):
    """A finding someone chose to ignore for one graph (``advisor.rules``: ``<kind>:<subject>``).

    It holds for every execution of the graph, past and future, until someone undoes it
    (``services.finding_restore`` deletes the row)."""

    id = models.BigAutoField(primary_key=True)
    graph_name = models.CharField(max_length=200)
    key = models.CharField(max_length=300, help_text="The finding's kind and subject, e.g. whole_state:reports.")
    title = models.CharField(max_length=300, blank=True, help_text="What the finding said when it was dismissed.")
    dismissed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    dismissed_by_name = models.CharField(max_length=150, blank=True, help_text="The username at the time.")
    dismissed_at = models.DateTimeField()

    class Meta:
        ordering = ["graph_name", "-dismissed_at"]
        constraints = [
            models.UniqueConstraint(fields=["graph_name", "key"], name="advisor_dismissal_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.graph_name}: {self.key}"
