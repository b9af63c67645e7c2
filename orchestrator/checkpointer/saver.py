"""``DjangoCheckpointSaver``: the LangGraph ``BaseCheckpointSaver`` API over Loopgate's own tables.

The methods turn LangGraph's arguments into plain rows (``rows.py``) and hand
them to the storage path of the database: ``postgres.py`` (one SQL statement
per write and per read, psycopg directly) on Postgres, ``portable.py`` (the
ORM) elsewhere, SQLite in embedded mode. Retention (``retention.py``) runs on
the ORM everywhere.

Threads and transactions: the saver holds no connection, only a database alias,
so one instance serves every thread (``get_checkpointer()``). Each call uses the
calling thread's Django connection, and each write is its own transaction (a
savepoint inside a caller's ``transaction.atomic`` on the same thread). The sync
graph loop runs ``put``/``put_writes`` on LangGraph's own short-lived threads:
their connections go back when the thread ends (to Django's pool when
``OPTIONS["pool"]`` is set, which is what makes them cheap; closed otherwise).
The async methods run the database step through ``sync_to_async``
(thread-sensitive, as Django's own async ORM does); the serde work stays on the
loop. The sync and async methods mirror each other, as in LangGraph's own
savers; ``list`` and ``alist`` share one paging loop (``_Pager``).

Lease fencing: a runner may put ``configurable["loopgate_lease"] =
{"execution_id": ..., "token": ...}`` in the config; every ``put`` and
``put_writes`` of that run is then refused, writing nothing, unless the
execution's ``lease_owner`` is still that token (``LeaseRefused``, a
``LeaseLost``). Without it the saver is plain LangGraph.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from orchestrator.checkpointer import portable, postgres, retention
from orchestrator.checkpointer.encoding import metadata_matches
from orchestrator.checkpointer.rows import (
    BlobRecord,
    CheckpointRecord,
    Cursor,
    Lease,
    ListQuery,
    Stored,
    WriteBatch,
    dump_checkpoint,
    dump_writes,
    lease_of,
    load_tuple,
    next_config,
    thread_key,
)

# Checkpoints fetched per query by list(); on Postgres a page is one
# statement, on the portable path it costs two more (blobs, writes).
LIST_PAGE_SIZE = 100

P = ParamSpec("P")
R = TypeVar("R")


# --- connections of short-lived threads --------------------------------------------

_thread_closers = threading.local()


class _CloseWithThread:
    """Closes (or returns to the pool) a thread's connection when the thread ends.

    LangGraph's sync loop calls ``put``/``put_writes`` from a thread pool it
    creates for each run. Each of those threads gets its own Django
    connection, and no request end closes it: it would linger until the cyclic
    GC finds it, so a busy worker piles up Postgres connections. A thread's
    locals are dropped in the dying thread itself, before ``join()`` returns,
    so this closes the connection there and then.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def __del__(self) -> None:
        self.connection.close()


def _close_with_thread(alias: str) -> None:
    # The main thread lives as long as the process; whoever runs it (a Celery
    # task, a request) already manages its connections.
    if threading.current_thread() is threading.main_thread():
        return
    connection = connections[alias]
    closers: dict[str, _CloseWithThread] = _thread_closers.__dict__.setdefault("by_alias", {})
    if alias not in closers or closers[alias].connection is not connection:
        closers[alias] = _CloseWithThread(connection)


def _db_step(
    method: Callable[Concatenate[DjangoCheckpointSaver, P], R],
) -> Callable[Concatenate[DjangoCheckpointSaver, P], R]:
    """Marks a method that uses the database, so its thread's connection is closed with the thread."""

    @functools.wraps(method)
    def wrapper(self: DjangoCheckpointSaver, *args: P.args, **kwargs: P.kwargs) -> R:
        _close_with_thread(self.using)
        return method(self, *args, **kwargs)

    return wrapper


@dataclass
class _Pager:
    """The paging loop ``list`` and ``alist`` share: how many to ask for next, and what came back."""

    query: ListQuery
    serde: SerializerProtocol
    cursor: Cursor | None = None
    remaining: int | None = None
    finished: bool = False

    def __post_init__(self) -> None:
        self.remaining = self.query.limit

    def want(self) -> int:
        """How many matches to fetch next; 0 when done."""
        if self.finished or (self.remaining is not None and self.remaining <= 0):
            return 0
        return LIST_PAGE_SIZE if self.remaining is None else min(self.remaining, LIST_PAGE_SIZE)

    def take(self, page: list[Stored], cursor: Cursor | None) -> Iterator[CheckpointTuple]:
        self.cursor, self.finished = cursor, cursor is None
        if self.remaining is not None:
            self.remaining -= len(page)
        return (load_tuple(self.serde, stored) for stored in page)


class DjangoCheckpointSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on Django models, for any database alias (Postgres or SQLite).

    ``DjangoCheckpointSaver(using="default")``; ``get_checkpointer()`` returns the
    process-wide instance for the default database.
    """

    def __init__(self, using: str = DEFAULT_DB_ALIAS, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        if using not in settings.DATABASES:
            raise ImproperlyConfigured(f"DjangoCheckpointSaver: no database {using!r} in DATABASES.")
        self.using = using
        # Postgres through psycopg 3 takes the single-statement path; anything else the ORM.
        from django.db.backends.postgresql.psycopg_any import is_psycopg3

        self._store: Any = postgres if connections[using].vendor == "postgresql" and is_psycopg3 else portable

    def __repr__(self) -> str:
        return f"DjangoCheckpointSaver(using={self.using!r})"

    # Versions sort as strings, so the newest blob of a channel is the greatest;
    # the random part keeps concurrent forks of one parent from sharing a version.
    def get_next_version(self, current: str | None, channel: None) -> str:
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # --- database steps (sync; the async methods run them in sync_to_async) ----

    @_db_step
    def _save_checkpoint(self, record: CheckpointRecord, blobs: list[BlobRecord], lease: Lease | None) -> None:
        self._store.save_checkpoint(self.using, record, blobs, lease)

    @_db_step
    def _save_writes(self, batch: WriteBatch, lease: Lease | None) -> None:
        self._store.save_writes(self.using, batch, lease)

    def _complete(self, rows: list[Stored]) -> None:
        if missing := [row for row in rows if not row.complete]:
            portable.attach_values(self.using, missing)

    @_db_step
    def _fetch_tuple(self, config: RunnableConfig) -> Stored | None:
        thread_id, checkpoint_ns = thread_key(config)
        stored = self._store.fetch_tuple(self.using, self.serde, thread_id, checkpoint_ns, get_checkpoint_id(config))
        if stored is not None:
            self._complete([stored])
        return stored

    @_db_step
    def _fetch_matches(self, query: ListQuery, want: int, cursor: Cursor | None) -> tuple[list[Stored], Cursor | None]:
        """Up to ``want`` matching checkpoints after ``cursor``, newest first, and the next cursor.

        The cursor is None once nothing older is left. Without a metadata filter
        this is one query for the rows; with one, rows are read a page at a time
        and matched in Python, so ``limit`` counts matches, not rows read.
        """
        found: list[Stored] = []
        while len(found) < want:
            size = LIST_PAGE_SIZE if query.filter else want - len(found)
            batch = self._store.fetch_page(self.using, self.serde, query, size, cursor)
            stopped_early = False
            for i, stored in enumerate(batch):
                cursor = (stored.checkpoint_id, stored.pk)
                if metadata_matches(stored.metadata, query.filter):
                    found.append(stored)
                    if len(found) == want:
                        stopped_early = i < len(batch) - 1
                        break
            if len(batch) < size and not stopped_early:
                cursor = None  # read everything there was
                break
        self._complete(found)
        return found, cursor

    # --- the BaseCheckpointSaver API, sync ---------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config``, or the thread's latest without a ``checkpoint_id``."""
        stored = self._fetch_tuple(config)
        return None if stored is None else load_tuple(self.serde, stored)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; ``filter`` matches metadata as jsonb ``@>`` does."""
        pager = _Pager(ListQuery.from_args(config, filter, before, limit), self.serde)
        while want := pager.want():
            yield from pager.take(*self._fetch_matches(pager.query, want, pager.cursor))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the blobs of its new channel versions, in one transaction."""
        record, blobs = dump_checkpoint(self.serde, config, checkpoint, metadata, new_versions)
        self._save_checkpoint(record, blobs, lease_of(config))
        return next_config(config, checkpoint)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes on the checkpoint it started from, in one statement."""
        batch = dump_writes(self.serde, config, writes, task_id, task_path)
        self._save_writes(batch, lease_of(config))

    @_db_step
    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints, blobs and writes, in every namespace."""
        retention.delete_threads(self.using, [str(thread_id)])

    @_db_step
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's whole history (every namespace, blob and write) to another thread id.

        Checkpoint ids stay the same, so a checkpoint of the source can be
        resumed on the target. One transaction; idempotent: rows the target
        already has are left as they are. A missing source copies nothing.
        """
        retention.copy_thread(self.using, str(source_thread_id), str(target_thread_id))

    @_db_step
    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints made by these runs (``metadata["run_id"]``), their writes and unshared blobs."""
        if ids := [str(run_id) for run_id in run_ids]:
            retention.delete_for_runs(self.using, self.serde, ids)

    @_db_step
    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Retention. ``"keep_latest"`` keeps the newest checkpoint of each namespace, ``"delete"`` nothing.

        ``keep_latest`` also keeps the ancestors a ``DeltaChannel`` needs to
        rebuild its value, and every blob a kept checkpoint points at.
        """
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"Unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'.")
        if ids := [str(thread_id) for thread_id in thread_ids]:
            retention.prune(self.using, self.serde, ids, strategy)

    @_db_step
    def prune_keeping(self, thread_id: str, keep: Sequence[str]) -> int:
        """Retention that keeps more than the newest: deletes every checkpoint of the thread except
        ``keep`` and what ``prune(strategy="keep_latest")`` keeps. Returns how many were deleted."""
        return retention.prune_keeping(self.using, self.serde, str(thread_id), set(keep))

    # --- async: serde work on the loop, the database step in sync_to_async --------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        stored = await sync_to_async(self._fetch_tuple)(config)
        return None if stored is None else load_tuple(self.serde, stored)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        pager = _Pager(ListQuery.from_args(config, filter, before, limit), self.serde)
        while want := pager.want():
            for item in pager.take(*await sync_to_async(self._fetch_matches)(pager.query, want, pager.cursor)):
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        record, blobs = dump_checkpoint(self.serde, config, checkpoint, metadata, new_versions)
        await sync_to_async(self._save_checkpoint)(record, blobs, lease_of(config))
        return next_config(config, checkpoint)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        batch = dump_writes(self.serde, config, writes, task_id, task_path)
        await sync_to_async(self._save_writes)(batch, lease_of(config))

    async def adelete_thread(self, thread_id: str) -> None:
        await sync_to_async(self.delete_thread)(thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await sync_to_async(self.copy_thread)(source_thread_id, target_thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await sync_to_async(self.delete_for_runs)(run_ids)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await sync_to_async(self.prune)(thread_ids, strategy=strategy)


_shared: DjangoCheckpointSaver | None = None
_shared_lock = threading.Lock()


def get_checkpointer() -> DjangoCheckpointSaver:
    """The process-wide saver on the default database (the registry and the runner use it).

    Safe to share: the saver keeps no connection or state of its own.
    """
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = DjangoCheckpointSaver(using=DEFAULT_DB_ALIAS)
    return _shared
