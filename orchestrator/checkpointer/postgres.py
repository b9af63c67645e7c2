"""The hot path on Postgres: one SQL statement per write and per read, through psycopg directly.

Profiles of the ORM path (docs/PERFORMANCE.md) showed a step spending more in
Python (query building, model ``__init__``, field preparation, client-side
quoting of bytea as text) than waiting on the database, and three queries per
read. So here, on the Django connection's own psycopg connection (its
transaction, its autocommit, its pool):

- ``put`` is one statement: a CTE inserting the new blobs, then the checkpoint;
  ``put_writes`` is one ``INSERT … SELECT … FROM unnest(…)``; both with
  server-side binding and bytea sent in binary;
- ``get_tuple`` and each page of ``list`` are one ``SELECT`` that brings the
  blobs and the pending writes along, as LangGraph's saver does, results in
  binary;
- with a ``Lease`` the same statement locks the execution row ``FOR KEY SHARE``
  and writes nothing unless its ``lease_owner`` is still the writer's token: a
  worker that lost its lease cannot write, and a takeover's claim (an UPDATE of
  ``lease_owner``, a key column through the ``execution_lease_fence`` unique
  constraint) waits for a write already under way, so the new owner reads it.
  The run's own updates of that row (``step_count`` with each step, the lease's
  heartbeat) change no key column and so neither wait for a write nor make one
  wait: with ``FOR SHARE`` each step's ``step_count`` update queued behind the
  checkpoint writes in flight, ~2 ms a step (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.json import Jsonb

from orchestrator.checkpointer.rows import (
    BlobRecord,
    decode_row,
    CheckpointRecord,
    Cursor,
    Lease,
    LeaseRefused,
    ListQuery,
    Stored,
    WriteBatch,
)
from orchestrator.models.checkpoints import Checkpoint as CheckpointRow
from orchestrator.models.checkpoints import CheckpointBlob, CheckpointWrite

_CP = CheckpointRow._meta.db_table
_BLOB = CheckpointBlob._meta.db_table
_WRITE = CheckpointWrite._meta.db_table
_EXECUTION = "orchestrator_execution"


def _dumps(value: Any) -> str:
    # Compact, and what Django's JSONField would store (json.dumps of plain JSON).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# The lease guard: one row while the execution's lease is the writer's, locked
# FOR KEY SHARE so a concurrent claim (a key update) waits for this statement's commit.
_LEASE_CTE = f"""lease AS (
    SELECT 1 FROM {_EXECUTION} WHERE id = %(execution_id)s::uuid AND lease_owner = %(token)s FOR KEY SHARE
)"""

# Whether put_writes commits asynchronously (see save_writes); a switch for the bench.
RELAXED_WRITES = True

_UPSERT = "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob, task_path = EXCLUDED.task_path"


def _values(n: int, names: tuple[str, ...], binary: str) -> str:
    """``VALUES (%(channel0)s, …), (…)`` for n rows; ``binary`` names the bytea column, sent in binary.

    A statement per row count (cached, and prepared per connection): a few rows
    as literals' parameters cost less to send than arrays through ``unnest``.
    """
    return "VALUES " + ", ".join(
        "(" + ", ".join(f"%({name}{i}){'b' if name == binary else 's'}" for name in names) + ")" for i in range(n)
    )


@functools.lru_cache(maxsize=256)
def put_sql(n_blobs: int, leased: bool) -> str:
    guard = " CROSS JOIN lease" if leased else ""
    parts = [_LEASE_CTE] if leased else []
    if n_blobs:
        parts.append(f"""blobs AS (
    INSERT INTO {_BLOB} (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(ns)s, b.channel, b.version, b.type, b.blob
    FROM ({_values(n_blobs, ("channel", "version", "type", "blob"), "blob")}) AS b(channel, version, type, blob){guard}
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)""")
    parts.append(f"""saved AS (
    INSERT INTO {_CP} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata, run_id,
                      created_at)
    SELECT %(thread_id)s, %(ns)s, %(checkpoint_id)s, %(parent_id)s, %(checkpoint)s, %(metadata)s, %(run_id)s, now()
    {"FROM lease" if leased else ""}
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
    DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata, run_id = EXCLUDED.run_id
    RETURNING 1
)""")
    return "WITH " + ",\n".join(parts) + "\nSELECT count(*) FROM saved"


@functools.lru_cache(maxsize=256)
def put_writes_sql(n: int, upsert: bool, leased: bool, relaxed: bool) -> str:
    guard = " CROSS JOIN lease" if leased else ""
    lease = _LEASE_CTE + ",\n" if leased else ""
    return f"""WITH {lease}saved AS (
    INSERT INTO {_WRITE} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
    SELECT %(thread_id)s, %(ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s, w.idx, w.channel, w.type, w.blob
    FROM ({_values(n, ("idx", "channel", "type", "blob"), "blob")}) AS w(idx, channel, type, blob){guard}
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {_UPSERT if upsert else "DO NOTHING"}
    RETURNING 1
)
SELECT (SELECT count(*) FROM saved){", (SELECT count(*) FROM lease)" if leased else ""}{
    ", set_config('synchronous_commit', 'off', true)" if relaxed else ""}"""


# One checkpoint row with its blobs (the versions it points at that are not
# inline) and its pending writes, in the order the pregel loop applies them.
_SELECT = f"""SELECT c.id, c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint::text, c.metadata::text,
    jsonb_typeof(c.checkpoint -> 'channel_versions') = 'object',
    bl.channels, bl.types, bl.blobs,
    wr.task_ids, wr.channels, wr.types, wr.blobs
FROM {_CP} c
LEFT JOIN LATERAL (
    SELECT array_agg(v.key) AS channels, array_agg(x.type) AS types, array_agg(x.blob) AS blobs
    FROM jsonb_each_text(CASE jsonb_typeof(c.checkpoint -> 'channel_versions') WHEN 'object'
                         THEN c.checkpoint -> 'channel_versions' ELSE '{{}}'::jsonb END) AS v
    -- LIMIT 1 keeps this a lookup per version on the unique index: flattened
    -- into a join, the planner hashes every blob of the thread for each row.
    CROSS JOIN LATERAL (
        SELECT b.type, b.blob FROM {_BLOB} b
        WHERE b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns AND b.channel = v.key AND b.version = v.value
        LIMIT 1
    ) AS x
    WHERE NOT (c.checkpoint -> 'channel_values') ? v.key
) bl ON true
LEFT JOIN LATERAL (
    SELECT array_agg(w.task_id ORDER BY w.task_path, w.task_id, w.idx) AS task_ids,
           array_agg(w.channel ORDER BY w.task_path, w.task_id, w.idx) AS channels,
           array_agg(w.type ORDER BY w.task_path, w.task_id, w.idx) AS types,
           array_agg(w.blob ORDER BY w.task_path, w.task_id, w.idx) AS blobs
    FROM {_WRITE} w
    WHERE w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id
) wr ON true
"""


def _execute(alias: str, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run one statement through psycopg's server-side binding, results in binary.

    On a thread whose Django connection is open (always so inside a caller's
    ``transaction.atomic``) it runs there, in that connection's transaction.
    Otherwise, when Django pools the database's connections, it borrows a
    connection from that pool for just this statement (autocommit): LangGraph's short-lived threads then never set
    up a Django connection of their own, and the pool's connections keep their
    prepared statements. Errors are Django's either way, and the statement shows
    in ``connection.queries`` when queries are logged.
    """
    connection: BaseDatabaseWrapper = connections[alias]
    began = time.monotonic()
    # A thread that has its Django connection open already (a request, a Celery task) uses it.
    pool = None if connection.connection is not None else getattr(connection, "pool", None)
    with connection.wrap_database_errors:
        if pool is not None:
            if pool.closed:
                pool.open()
            with pool.connection() as raw:
                rows = _run(raw, sql, params, _prepare(connection))
        else:
            connection.ensure_connection()
            connection.validate_no_broken_transaction()
            rows = _run(connection.connection, sql, params, _prepare(connection))
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - began:.3f}"})
    return rows


# psycopg ignores prepare=True on a connection whose prepare_threshold is None,
# which is how Django opens them: a threshold no query reaches keeps Django's
# own queries unprepared and lets these few be prepared on request.
_NEVER_BY_COUNT = 2**31 - 1


def _run(raw: psycopg.Connection[Any], sql: str, params: dict[str, Any], prepare: bool) -> list[tuple[Any, ...]]:
    if prepare and raw.prepare_threshold is None:
        raw.prepare_threshold = _NEVER_BY_COUNT
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, binary=True, prepare=prepare)
        return cursor.fetchall()


def _prepare(connection: BaseDatabaseWrapper) -> bool:
    """Prepared statements, as LangGraph's saver uses, unless the settings turned them off.

    Django leaves psycopg's ``prepare_threshold`` at None (off) for the sake of
    pgbouncer in transaction mode; a deployment behind one says so explicitly
    with ``OPTIONS["prepare_threshold"] = None``, and these statements are then
    not prepared either. Otherwise these few statements are planned once per
    connection (planning the read alone takes ~0.4 ms).
    """
    return "prepare_threshold" not in connection.settings_dict["OPTIONS"] or (
        connection.settings_dict["OPTIONS"]["prepare_threshold"] is not None
    )


def _lease_params(lease: Lease | None) -> dict[str, Any]:
    return {"execution_id": lease.execution_id, "token": lease.token} if lease else {}


def save_checkpoint(alias: str, record: CheckpointRecord, blobs: list[BlobRecord], lease: Lease | None) -> None:
    """Blobs and checkpoint in one statement, so one commit: a reader who sees the checkpoint finds its values."""
    params = {
        "thread_id": record.thread_id,
        "ns": record.checkpoint_ns,
        "checkpoint_id": record.checkpoint_id,
        "parent_id": record.parent_checkpoint_id,
        "checkpoint": Jsonb(record.checkpoint, dumps=_dumps),
        "metadata": Jsonb(record.metadata, dumps=_dumps),
        "run_id": record.run_id,
        **_lease_params(lease),
    }
    for i, b in enumerate(blobs):
        params.update({f"channel{i}": b.channel, f"version{i}": b.version, f"type{i}": b.type, f"blob{i}": b.blob})
    ((saved,),) = _execute(alias, put_sql(len(blobs), lease is not None), params)
    if lease is not None and not saved:
        raise LeaseRefused(record.thread_id)


def save_writes(alias: str, batch: WriteBatch, lease: Lease | None) -> None:
    if not batch.rows:
        return
    params = {
        "thread_id": batch.thread_id,
        "ns": batch.checkpoint_ns,
        "checkpoint_id": batch.checkpoint_id,
        "task_id": batch.task_id,
        "task_path": batch.task_path,
        **_lease_params(lease),
    }
    for i, w in enumerate(batch.rows):
        params.update({f"idx{i}": w.idx, f"channel{i}": w.channel, f"type{i}": w.type, f"blob{i}": w.blob})
    # Pending writes commit without waiting for their WAL flush when they are a
    # transaction of their own: the step's next checkpoint commits synchronously,
    # and a flush covers everything logged before it, so a Postgres crash can
    # lose only writes no checkpoint followed yet, whose tasks then run again,
    # as after a worker crash (docs/PERFORMANCE.md). Inside a caller's
    # transaction the caller's durability applies untouched.
    relaxed = RELAXED_WRITES and not connections[alias].in_atomic_block
    sql = put_writes_sql(len(batch.rows), batch.upsert, lease is not None, relaxed)
    (row,) = _execute(alias, sql, params)
    # Writes that were already stored (a replay) save nothing: only the lease's row count says "refused".
    if lease is not None and not row[1]:
        raise LeaseRefused(batch.thread_id)


def _decode(serde: Any, raw: tuple[Any, ...]) -> Stored:
    """A row of ``_SELECT``, its values attached (``complete`` False when SQL could not match its versions)."""
    stored = decode_row(serde, raw)
    stored.complete = True
    versions_in_sql, b_channels, b_types, b_blobs, w_tasks, w_channels, w_types, w_blobs = raw[7:]
    if b_channels:
        stored.blobs = dict(zip(b_channels, zip(b_types, b_blobs)))
    if w_tasks:
        stored.writes = list(zip(w_tasks, w_channels, w_types, w_blobs))
    if not versions_in_sql and any(True for _ in stored.blob_keys()):
        # Versions stored under the serde marker: the saver reads them the portable way.
        stored.complete = False
    return stored


def fetch_tuple(alias: str, serde: Any, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> Stored | None:
    if checkpoint_id:
        where = "WHERE c.thread_id = %(t)s AND c.checkpoint_ns = %(ns)s AND c.checkpoint_id = %(id)s"
    else:
        where = "WHERE c.thread_id = %(t)s AND c.checkpoint_ns = %(ns)s ORDER BY c.checkpoint_id DESC LIMIT 1"
    rows = _execute(alias, _SELECT + where, {"t": thread_id, "ns": checkpoint_ns, "id": checkpoint_id})
    return _decode(serde, rows[0]) if rows else None


def fetch_page(alias: str, serde: Any, query: ListQuery, size: int, cursor: Cursor | None) -> list[Stored]:
    """Up to ``size`` rows after ``cursor``, newest first, values attached."""
    where, params = [], {}  # type: ignore[var-annotated]
    if query.thread_id is not None:
        where.append("c.thread_id = %(t)s")
        params["t"] = query.thread_id
    if query.checkpoint_ns is not None:
        where.append("c.checkpoint_ns = %(ns)s")
        params["ns"] = query.checkpoint_ns
    if query.checkpoint_id:
        where.append("c.checkpoint_id = %(id)s")
        params["id"] = query.checkpoint_id
    if query.before_id:
        where.append("c.checkpoint_id < %(before)s")
        params["before"] = query.before_id
    if query.run_id is not None:
        where.append("c.run_id = %(run_id)s")
        params["run_id"] = query.run_id
    if cursor is not None:
        where.append("(c.checkpoint_id < %(cid)s OR (c.checkpoint_id = %(cid)s AND c.id < %(cpk)s))")
        params.update(cid=cursor[0], cpk=cursor[1])
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY c.checkpoint_id DESC, c.id DESC LIMIT %(size)s"
    params["size"] = size
    return [_decode(serde, raw) for raw in _execute(alias, sql, params)]
