"""Threads and runs of the LangGraph-compatible API.

A thread is one LangGraph thread (its checkpoints live in the core's
checkpointer under ``str(thread.id)``) carrying many runs; a run is an ordinary
Loopgate execution on that thread, with what LangGraph's API says about it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Thread(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    # The graph its runs use, fixed by its first run (a thread's checkpoints fit one graph).
    graph_name = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"thread {self.id}"


class Run(models.Model):
    """What the API knows of a run beyond its execution: its thread, metadata and strategy."""

    class Strategy(models.TextChoices):
        REJECT = "reject", "reject"
        INTERRUPT = "interrupt", "interrupt"
        ROLLBACK = "rollback", "rollback"
        ENQUEUE = "enqueue", "enqueue"

    execution = models.OneToOneField("orchestrator.Execution", primary_key=True, on_delete=models.CASCADE,
                                     related_name="agent_run")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="runs")
    metadata = models.JSONField(default=dict, blank=True)
    multitask_strategy = models.CharField(max_length=12, choices=Strategy.choices, default=Strategy.REJECT)
    kwargs = models.JSONField(default=dict, blank=True, help_text="The request as LangGraph's API echoes it.")
    webhook = models.URLField(max_length=2000, blank=True,
                              help_text="POSTed, signed, each time the run stops (ends, or waits for people).")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]


class QueuedRun(models.Model):
    """A run asked for with multitask_strategy "enqueue" while its thread was busy. It becomes a
    run (an execution with this same id) once the thread's runs have ended; until then it is
    ``pending``. Cancelled, it stays, ``interrupted``; refused when its turn came, ``error``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="queued_runs")
    graph_name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    request = models.JSONField(default=dict, help_text="run_start's arguments, as the request gave them.")
    cancelled = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
