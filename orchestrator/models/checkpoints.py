"""LangGraph checkpoints on Django models, the tables of ``DjangoCheckpointSaver``.

The layout mirrors LangGraph's checkpoint-postgres saver, so a step's cost does
not grow with the history:

- ``Checkpoint``: one row per checkpoint, the checkpoint itself as JSON with
  small primitive channel values inline, and its metadata;
- ``CheckpointBlob``: one row per (thread, namespace, channel, version), so a
  channel value is stored once however many checkpoints point at it;
- ``CheckpointWrite``: the pending writes of the tasks of a step.

Values are bytes from the saver's serde (``dumps_typed``); only the saver writes
these tables. Keys are ``TextField`` as in the Postgres saver: thread ids and
nested namespaces have no length the saver could promise.
"""

from __future__ import annotations

from django.db import models


class Checkpoint(models.Model):
    """One LangGraph checkpoint of one thread and namespace."""

    thread_id = models.TextField()
    checkpoint_ns = models.TextField(blank=True, default="")
    checkpoint_id = models.TextField()
    parent_checkpoint_id = models.TextField(blank=True, default="")
    # The checkpoint without its non-primitive channel values (those are blobs):
    # v, id, ts, channel_versions, versions_seen, updated_channels, and
    # channel_values holding only the small primitives.
    checkpoint = models.JSONField()
    metadata = models.JSONField(default=dict, blank=True)
    # A copy of metadata["run_id"], so delete_for_runs is an indexed lookup.
    run_id = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Also the index of get_tuple (latest: ORDER BY checkpoint_id DESC
            # LIMIT 1) and of list on a thread.
            models.UniqueConstraint(
                fields=["thread_id", "checkpoint_ns", "checkpoint_id"], name="checkpoint_unique_id"
            ),
        ]
        indexes = [
            models.Index(fields=["run_id"], name="checkpoint_run_id", condition=~models.Q(run_id="")),
        ]

    def __str__(self) -> str:
        return f"{self.thread_id} {self.checkpoint_ns or '(root)'} {self.checkpoint_id}"


class CheckpointBlob(models.Model):
    """One version of one channel's value, shared by every checkpoint at that version."""

    thread_id = models.TextField()
    checkpoint_ns = models.TextField(blank=True, default="")
    channel = models.TextField()
    version = models.TextField()
    type = models.TextField()
    blob = models.BinaryField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["thread_id", "checkpoint_ns", "channel", "version"], name="checkpoint_blob_unique_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.thread_id} {self.checkpoint_ns or '(root)'} {self.channel}@{self.version}"


class CheckpointWrite(models.Model):
    """One pending write of one task, attached to the checkpoint the task started from."""

    thread_id = models.TextField()
    checkpoint_ns = models.TextField(blank=True, default="")
    checkpoint_id = models.TextField()
    task_id = models.TextField()
    task_path = models.TextField(blank=True, default="")
    # The write's position in its task's list, or a negative slot from
    # WRITES_IDX_MAP for the special channels (error, interrupt, resume, ...).
    idx = models.IntegerField()
    channel = models.TextField()
    type = models.TextField()
    blob = models.BinaryField()

    class Meta:
        constraints = [
            # Also the index of the pending writes of a checkpoint.
            models.UniqueConstraint(
                fields=["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"],
                name="checkpoint_write_unique_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.thread_id} {self.checkpoint_id} {self.task_id}[{self.idx}] {self.channel}"
