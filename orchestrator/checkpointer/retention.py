"""Beyond LangGraph's base API: deleting, copying (forks) and pruning (retention) threads.

On the ORM, for every backend: none of this is on a step's path. Each function
is one transaction on the given database alias.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from langgraph.checkpoint.base import ChannelVersions

from orchestrator.checkpointer.encoding import chunks, from_json
from orchestrator.checkpointer.rows import ROW_FIELDS, Stored, decode_row, stored_channels
from orchestrator.models.checkpoints import Checkpoint as CheckpointRow
from orchestrator.models.checkpoints import CheckpointBlob, CheckpointWrite

# Rows per INSERT when copying a thread.
COPY_BATCH_SIZE = 500
_MODELS = (CheckpointRow, CheckpointBlob, CheckpointWrite)


def delete_threads(alias: str, thread_ids: list[str]) -> None:
    """Delete these threads' checkpoints, blobs and writes, in every namespace."""
    with transaction.atomic(using=alias):
        for model in _MODELS:
            model.objects.using(alias).filter(thread_id__in=thread_ids).delete()


def copy_thread(alias: str, source: str, target: str) -> None:
    # Keyset pages by pk, fully read before each insert: SQLite leaves
    # undefined what a cursor sees of rows inserted while it is open.
    with transaction.atomic(using=alias):
        model: type[CheckpointBlob] | type[CheckpointRow] | type[CheckpointWrite]
        for model in _MODELS:
            last_pk = 0
            while True:
                batch = list(
                    model.objects.using(alias).filter(thread_id=source, pk__gt=last_pk).order_by("pk")[:COPY_BATCH_SIZE]
                )
                if not batch:
                    break
                last_pk = batch[-1].pk
                for obj in batch:
                    obj.pk = None
                    obj.thread_id = target
                # Idempotent: rows the target already has are kept, so a retried fork is harmless.
                model.objects.using(alias).bulk_create(batch, ignore_conflicts=True)


def _delete_orphan_blobs(alias: str, thread_id: str, checkpoint_ns: str, kept: Iterable[ChannelVersions]) -> None:
    """Delete the blobs of a thread and namespace that none of the ``kept`` channel versions point at.

    Blobs are shared between checkpoints (that is the point of them), so a
    blob goes only when no remaining checkpoint of its thread needs it.
    """
    referenced = {(channel, str(version)) for versions in kept for channel, version in versions.items()}
    blobs = CheckpointBlob.objects.using(alias).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
    orphans = [
        pk for pk, channel, version in blobs.values_list("pk", "channel", "version") if (channel, version) not in referenced
    ]
    for chunk in chunks(orphans, 500):
        CheckpointBlob.objects.using(alias).filter(pk__in=chunk).delete()


def _collect_garbage(alias: str, serde: Any, thread_id: str, checkpoint_ns: str) -> None:
    """After checkpoints of a thread and namespace were deleted: drop their writes and unshared blobs."""
    remaining = CheckpointRow.objects.using(alias).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
    kept_ids = list(remaining.values_list("checkpoint_id", flat=True))
    CheckpointWrite.objects.using(alias).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns).exclude(
        checkpoint_id__in=kept_ids
    ).delete()
    # Only the versions, not whole checkpoints: a key lookup both backends run.
    kept = remaining.values_list("checkpoint__channel_versions", flat=True)
    _delete_orphan_blobs(alias, thread_id, checkpoint_ns, (from_json(serde, v or {}) for v in kept))


def delete_for_runs(alias: str, serde: Any, run_ids: list[str]) -> None:
    with transaction.atomic(using=alias):
        doomed = CheckpointRow.objects.using(alias).filter(run_id__in=run_ids)
        groups = set(doomed.values_list("thread_id", "checkpoint_ns"))
        doomed.delete()
        for thread_id, checkpoint_ns in groups:
            _collect_garbage(alias, serde, thread_id, checkpoint_ns)


def _prune_keep_latest(alias: str, serde: Any, thread_id: str, also_keep: frozenset[str] = frozenset()) -> int:
    """Keep the newest checkpoint of each namespace, with what DeltaChannel state needs,
    and the checkpoints named in ``also_keep``; returns how many checkpoints were deleted.

    A ``DeltaChannel`` rebuilds its value from its writes back to the nearest
    ancestor that stores a snapshot of it (see ``BaseCheckpointSaver.prune``):
    those ancestors and their writes stay too. The latest checkpoint's metadata
    names the delta channels (``counters_since_delta_snapshot``); threads
    without any keep one row.
    """
    rows = CheckpointRow.objects.using(alias).filter(thread_id=thread_id)
    by_ns: dict[str, dict[str, Stored]] = defaultdict(dict)
    deleted = 0
    for raw in rows.values_list(*ROW_FIELDS):
        stored = decode_row(serde, raw)
        by_ns[stored.checkpoint_ns][stored.checkpoint_id] = stored
    for checkpoint_ns, by_id in by_ns.items():
        latest = by_id[max(by_id)]
        keep = {latest.checkpoint_id} | (also_keep & by_id.keys())
        delta_channels = set(latest.metadata.get("counters_since_delta_snapshot") or ())
        if delta_channels:
            blob_keys = set(
                CheckpointBlob.objects.using(alias)
                .filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns, channel__in=delta_channels)
                .exclude(type="empty")
                .values_list("channel", "version")
            )
            missing = delta_channels - stored_channels(latest, delta_channels, blob_keys)
            parent = latest.parent_checkpoint_id
            while missing and parent in by_id:
                keep.add(parent)
                missing -= stored_channels(by_id[parent], delta_channels, blob_keys)
                parent = by_id[parent].parent_checkpoint_id
        doomed = [row.pk for row in by_id.values() if row.checkpoint_id not in keep]
        deleted += len(doomed)
        for chunk in chunks(doomed, 500):
            CheckpointRow.objects.using(alias).filter(pk__in=chunk).delete()
        CheckpointWrite.objects.using(alias).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns).exclude(
            checkpoint_id__in=keep
        ).delete()
        _delete_orphan_blobs(
            alias, thread_id, checkpoint_ns, (by_id[cid].checkpoint.get("channel_versions") or {} for cid in keep)
        )
    return deleted


def prune(alias: str, serde: Any, thread_ids: list[str], strategy: str) -> None:
    with transaction.atomic(using=alias):
        if strategy == "delete":
            for model in _MODELS:
                model.objects.using(alias).filter(thread_id__in=thread_ids).delete()
        else:
            for thread_id in thread_ids:
                _prune_keep_latest(alias, serde, thread_id)


def prune_keeping(alias: str, serde: Any, thread_id: str, keep: set[str]) -> int:
    """Delete the thread's checkpoints but ``keep``, the newest of each namespace and the ancestors
    its DeltaChannels need, with their writes and unshared blobs; returns how many were deleted."""
    with transaction.atomic(using=alias):
        return _prune_keep_latest(alias, serde, thread_id, frozenset(keep))
