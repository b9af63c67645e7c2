"""The portable path: the same reads and writes on the Django ORM, for any backend (SQLite in embedded mode).

Postgres takes ``postgres.py``'s single statements instead. Here a ``put`` is
one transaction of two statements (blobs, then the checkpoint), a
``put_writes`` one statement, a read one query for the rows and one each for
their blobs and writes. A ``Lease`` is checked inside the write's transaction:
SQLite's writers are serialized from ``BEGIN IMMEDIATE`` on (the embedded
settings' ``transaction_mode``), so no claim can slip between check and write.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Q

from orchestrator.checkpointer.encoding import chunks
from orchestrator.checkpointer.rows import (
    ROW_FIELDS,
    BlobRecord,
    CheckpointRecord,
    Cursor,
    Lease,
    LeaseRefused,
    ListQuery,
    Stored,
    WriteBatch,
    decode_row,
)
from orchestrator.models.checkpoints import Checkpoint as CheckpointRow
from orchestrator.models.checkpoints import CheckpointBlob, CheckpointWrite

# (channel, version) pairs per blob query: keeps the OR list well inside
# SQLite's expression depth and variable limits.
BLOB_KEYS_PER_QUERY = 200
_CHECKPOINT_KEY = ["thread_id", "checkpoint_ns", "checkpoint_id"]
_WRITE_KEY = ["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"]


def _check_lease(alias: str, lease: Lease | None, thread_id: str) -> None:
    from orchestrator.models import Execution

    if lease is not None and not Execution.objects.using(alias).filter(
        id=lease.execution_id, lease_owner=lease.token
    ).exists():
        raise LeaseRefused(thread_id)


def save_checkpoint(alias: str, record: CheckpointRecord, blobs: list[BlobRecord], lease: Lease | None) -> None:
    # Blobs first, so a reader who sees the checkpoint finds its values; both in one transaction.
    with transaction.atomic(using=alias):
        _check_lease(alias, lease, record.thread_id)
        if blobs:
            # A version's value never changes: a second write of it is a no-op.
            CheckpointBlob.objects.using(alias).bulk_create(
                [
                    CheckpointBlob(thread_id=record.thread_id, checkpoint_ns=record.checkpoint_ns, channel=b.channel,
                                   version=b.version, type=b.type, blob=b.blob)
                    for b in blobs
                ],
                ignore_conflicts=True,
            )
        CheckpointRow.objects.using(alias).bulk_create(
            [CheckpointRow(**record._asdict())],
            update_conflicts=True,
            unique_fields=_CHECKPOINT_KEY,
            update_fields=["checkpoint", "metadata", "run_id"],
        )


def save_writes(alias: str, batch: WriteBatch, lease: Lease | None) -> None:
    if not batch.rows:
        return
    rows = [
        CheckpointWrite(thread_id=batch.thread_id, checkpoint_ns=batch.checkpoint_ns, checkpoint_id=batch.checkpoint_id,
                        task_id=batch.task_id, task_path=batch.task_path, idx=w.idx, channel=w.channel, type=w.type,
                        blob=w.blob)
        for w in batch.rows
    ]
    manager = CheckpointWrite.objects.using(alias)
    with transaction.atomic(using=alias):
        _check_lease(alias, lease, batch.thread_id)
        if batch.upsert:
            manager.bulk_create(
                rows, update_conflicts=True, unique_fields=_WRITE_KEY, update_fields=["channel", "type", "blob", "task_path"]
            )
        else:
            manager.bulk_create(rows, ignore_conflicts=True)


def attach_values(alias: str, rows: list[Stored]) -> None:
    """Read the blobs and pending writes of ``rows``: one query each per thread and namespace."""
    groups: dict[tuple[str, str], list[Stored]] = defaultdict(list)
    for row in rows:
        groups[(row.thread_id, row.checkpoint_ns)].append(row)
    for (thread_id, checkpoint_ns), group in groups.items():
        wanted = sorted({key for row in group for key in row.blob_keys()})
        found: dict[tuple[str, str], tuple[str, bytes | None]] = {}
        for chunk in chunks(wanted, BLOB_KEYS_PER_QUERY):
            pairs = Q()
            for channel, version in chunk:
                pairs |= Q(channel=channel, version=version)
            blobs = (
                CheckpointBlob.objects.using(alias)
                .filter(pairs, thread_id=thread_id, checkpoint_ns=checkpoint_ns)
                .values_list("channel", "version", "type", "blob")
            )
            for channel, version, type_, data in blobs:
                found[(channel, version)] = (type_, data)
        for row in group:
            row.blobs = {channel: found[(channel, v)] for channel, v in row.blob_keys() if (channel, v) in found}

        by_id = {row.checkpoint_id: row for row in group}
        writes = (
            CheckpointWrite.objects.using(alias)
            .filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns, checkpoint_id__in=list(by_id))
            # writes_sort_key: the order the pregel loop applies a step's writes in.
            .order_by("checkpoint_id", "task_path", "task_id", "idx")
            .values_list("checkpoint_id", "task_id", "channel", "type", "blob")
        )
        for row in group:
            row.writes = []
        for checkpoint_id, task_id, channel, type_, data in writes:
            by_id[checkpoint_id].writes.append((task_id, channel, type_, data))
        for row in group:
            row.complete = True


def fetch_tuple(alias: str, serde: Any, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> Stored | None:
    rows = CheckpointRow.objects.using(alias).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
    if checkpoint_id:
        rows = rows.filter(checkpoint_id=checkpoint_id)
    found = rows.order_by("-checkpoint_id").values_list(*ROW_FIELDS).first()
    return None if found is None else decode_row(serde, found)


def fetch_page(alias: str, serde: Any, query: ListQuery, size: int, cursor: Cursor | None) -> list[Stored]:
    """Up to ``size`` rows after ``cursor``, newest first, values not attached yet."""
    rows = CheckpointRow.objects.using(alias).all()
    if query.thread_id is not None:
        rows = rows.filter(thread_id=query.thread_id)
    if query.checkpoint_ns is not None:
        rows = rows.filter(checkpoint_ns=query.checkpoint_ns)
    if query.checkpoint_id:
        rows = rows.filter(checkpoint_id=query.checkpoint_id)
    if query.before_id:
        rows = rows.filter(checkpoint_id__lt=query.before_id)
    if query.run_id is not None:
        rows = rows.filter(run_id=query.run_id)
    if cursor is not None:
        rows = rows.filter(Q(checkpoint_id__lt=cursor[0]) | Q(checkpoint_id=cursor[0], id__lt=cursor[1]))
    rows = rows.order_by("-checkpoint_id", "-id")
    return [decode_row(serde, raw) for raw in rows.values_list(*ROW_FIELDS)[:size]]
