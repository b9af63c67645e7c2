"""``DjangoCheckpointSaver``: LangGraph checkpoints in Loopgate's own database.

The design mirrors LangGraph's checkpoint-postgres saver (see
``orchestrator/models/checkpoints.py`` for the tables), on the Django ORM so it
runs on Postgres and SQLite alike:

- ``put`` stores the checkpoint row, with small primitive channel values inline
  in its JSON, and one blob row per channel *version* that changed. Unchanged
  channels are not written again, so a step costs what changed, not the history.
  Blobs and checkpoint go in one transaction (LangGraph's saver commits twice).
- ``put_writes`` stores a task's pending writes in one statement; the special
  channels of ``WRITES_IDX_MAP`` (error, interrupt, resume, ...) overwrite their
  slot, other writes are kept as first written, as the Postgres saver does.
- ``get_tuple`` and ``list`` read a checkpoint row, then its blobs and its
  writes. Metadata filters are matched in Python with jsonb ``@>`` semantics:
  JSON lookups differ between backends (``__contains`` fails on SQLite).
- Beyond the base API: ``copy_thread`` (a fork into a new execution),
  ``delete_for_runs`` and ``prune`` (retention), which LangGraph's savers leave out.

Values only ever pass through the serde (``dumps_typed``/``loads_typed``). JSON
columns hold plain JSON; a value JSON cannot hold exactly (bytes, a NUL in a
string, which Postgres refuses, NaN, a datetime...) is kept as the serde's bytes
under a ``{"__serde__": [type, base64]}`` marker, so metadata round-trips too.

Threads and transactions: the saver holds no connection, only a database alias,
so one instance serves every thread (``get_checkpointer()``). Each call uses the
calling thread's Django connection, and each write is its own transaction (a
savepoint inside a caller's ``transaction.atomic`` on the same thread). The sync
graph loop runs ``put``/``put_writes`` on LangGraph's own short-lived threads:
those writes commit on their own connections, which the saver closes when the
thread ends. Tests that run graphs need ``TransactionTestCase``. The async
methods run the ORM through ``sync_to_async`` (thread-sensitive, as Django's
own async ORM does).
"""

from __future__ import annotations

import base64
import functools
import math
import random
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from orchestrator.models.checkpoints import Checkpoint as CheckpointRow
from orchestrator.models.checkpoints import CheckpointBlob, CheckpointWrite

__all__ = ["DjangoCheckpointSaver", "get_checkpointer"]

# Strings up to this length stay inline in the checkpoint's JSON; longer ones
# become blobs, stored once per version instead of copied into every checkpoint.
INLINE_STR_MAX = 256
# Checkpoints fetched per query by list(); each page then costs two more
# queries (blobs, writes), whatever its length.
LIST_PAGE_SIZE = 100
# (channel, version) pairs per blob query: keeps the OR list well inside
# SQLite's expression depth and variable limits.
BLOB_KEYS_PER_QUERY = 200
# Rows per INSERT when copying a thread.
COPY_BATCH_SIZE = 500

_SERDE_MARKER = "__serde__"
_CHECKPOINT_KEY = ["thread_id", "checkpoint_ns", "checkpoint_id"]
_WRITE_KEY = ["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"]
_ROW_FIELDS = ("id", "thread_id", "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id", "checkpoint", "metadata")

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


# --- pure helpers: no database, shared by the sync and the async methods -------


def _is_json_str(value: str) -> bool:
    """Whether Postgres' jsonb can hold the string: it refuses NUL and lone surrogates."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_json_float(value: float) -> bool:
    """Whether the float survives JSON in both backends unchanged.

    NaN and infinities are not JSON; jsonb prints ``1e+16`` as an integer and
    drops the sign of ``-0.0``.
    """
    if not math.isfinite(value) or "e+" in repr(value):
        return False
    return not (value == 0.0 and math.copysign(1.0, value) < 0)


def _is_inline(value: Any) -> bool:
    """A channel value small and plain enough to live in the checkpoint row.

    Exact types only: a ``str`` enum or a named tuple would come back from JSON
    as a plain ``str`` or list, so it goes through the serde as a blob.
    """
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return True
    if kind is float:
        return _is_json_float(value)
    if kind is str:
        return len(value) <= INLINE_STR_MAX and _is_json_str(value)
    return False


def _to_json(serde: SerializerProtocol, value: Any) -> Any:
    """Plain JSON for what JSON holds exactly; the serde's bytes under a marker for the rest.

    Tuples become lists, as in every JSON-based saver (and in the serde itself).
    """
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is float and _is_json_float(value):
        return value
    if kind is str and _is_json_str(value):
        return value
    if kind is list or kind is tuple:
        return [_to_json(serde, item) for item in value]
    # A dict that itself has the marker key is encoded whole, so decoding is unambiguous.
    if kind is dict and _SERDE_MARKER not in value and all(type(k) is str and _is_json_str(k) for k in value):
        return {k: _to_json(serde, v) for k, v in value.items()}
    type_, data = serde.dumps_typed(value)
    return {_SERDE_MARKER: [type_, base64.b64encode(data).decode("ascii")]}


def _from_json(serde: SerializerProtocol, value: Any) -> Any:
    """Undo ``_to_json``."""
    kind = type(value)
    if kind is list:
        return [_from_json(serde, item) for item in value]
    if kind is dict:
        if len(value) == 1 and _SERDE_MARKER in value:
            type_, data = value[_SERDE_MARKER]
            return serde.loads_typed((type_, base64.b64decode(data)))
        return {k: _from_json(serde, v) for k, v in value.items()}
    return value


def _contains(haystack: Any, needle: Any) -> bool:
    """Postgres' jsonb ``@>`` on Python values: what ``list(filter=...)`` means in LangGraph's saver."""
    if type(needle) is dict:
        return type(haystack) is dict and all(k in haystack and _contains(haystack[k], v) for k, v in needle.items())
    if isinstance(needle, (list, tuple)):
        return isinstance(haystack, (list, tuple)) and all(any(_contains(h, n) for h in haystack) for n in needle)
    if isinstance(needle, bool) or isinstance(haystack, bool):
        # JSON keeps true and 1 apart; Python's == does not.
        return type(haystack) is type(needle) and haystack == needle
    return bool(haystack == needle)


def _stored_channels(stored: _Stored, channels: set[str], blob_keys: set[tuple[str, str]]) -> set[str]:
    """Which of ``channels`` have a value stored at this checkpoint, inline or as a blob."""
    inline = stored.checkpoint.get("channel_values") or {}
    versions = stored.checkpoint.get("channel_versions") or {}
    return {ch for ch in channels if ch in inline or (ch, str(versions.get(ch))) in blob_keys}


def _metadata_matches(metadata: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    return not filter or _contains(metadata, filter)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _thread_key(config: RunnableConfig) -> tuple[str, str]:
    configurable = config["configurable"]
    return str(configurable["thread_id"]), configurable.get("checkpoint_ns") or ""


def _dump_checkpoint(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> tuple[CheckpointRow, list[CheckpointBlob]]:
    """The unsaved rows for one ``put``: the checkpoint and the blobs of its new channel versions.

    As in the Postgres saver, a non-inline value gets a blob only when its
    channel is in ``new_versions``; an unchanged channel points at the blob of
    its current version, written by an earlier checkpoint.
    """
    thread_id, checkpoint_ns = _thread_key(config)
    inline: dict[str, Any] = {}
    blob_values: dict[str, Any] = {}
    for channel, value in checkpoint["channel_values"].items():
        (inline if _is_inline(value) else blob_values)[channel] = value
    body = {**checkpoint, "channel_values": inline}
    stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
    run_id = stored_metadata.get("run_id")
    row = CheckpointRow(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint["id"],
        parent_checkpoint_id=config["configurable"].get("checkpoint_id") or "",
        checkpoint=_to_json(serde, body),
        metadata=_to_json(serde, stored_metadata),
        run_id="" if run_id is None else str(run_id),
    )
    blobs = []
    for channel, version in new_versions.items():
        if channel in blob_values:
            type_, data = serde.dumps_typed(blob_values[channel])
            blobs.append(
                CheckpointBlob(
                    thread_id=thread_id,
                    checkpoint_ns=checkpoint_ns,
                    channel=channel,
                    version=str(version),
                    type=type_,
                    blob=data,
                )
            )
    return row, blobs


def _next_config(config: RunnableConfig, checkpoint: Checkpoint) -> RunnableConfig:
    configurable = config["configurable"]
    return {
        "configurable": {
            "thread_id": configurable["thread_id"],
            "checkpoint_ns": configurable.get("checkpoint_ns") or "",
            "checkpoint_id": checkpoint["id"],
        }
    }


def _dump_writes(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> tuple[list[CheckpointWrite], bool]:
    """The unsaved rows for one ``put_writes``, and whether they overwrite (upsert) or not.

    Like the Postgres saver: a batch made only of special channels (fixed
    negative slots from ``WRITES_IDX_MAP``) replaces what is in those slots, so
    a retried task's new error wins; any other batch keeps the writes already
    stored, since a task's successful writes never change.
    """
    thread_id, checkpoint_ns = _thread_key(config)
    checkpoint_id = config["configurable"]["checkpoint_id"]
    upsert = all(channel in WRITES_IDX_MAP for channel, _ in writes)
    rows: dict[int, CheckpointWrite] = {}
    for idx, (channel, value) in enumerate(writes):
        slot = WRITES_IDX_MAP.get(channel, idx)
        # One statement must not touch a key twice (Postgres refuses it for an
        # upsert): keep what row-by-row statements would leave, the last for
        # an upsert, the first otherwise.
        if slot in rows and not upsert:
            continue
        type_, data = serde.dumps_typed(value)
        rows[slot] = CheckpointWrite(
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
            task_id=task_id,
            task_path=task_path,
            idx=slot,
            channel=channel,
            type=type_,
            blob=data,
        )
    return list(rows.values()), upsert


@dataclass(slots=True)
class _Stored:
    """A checkpoint as read from the database, JSON decoded, values still serialized."""

    pk: int
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]
    blobs: dict[str, tuple[str, bytes | None]] = field(default_factory=dict)
    writes: list[tuple[str, str, str, bytes]] = field(default_factory=list)

    def blob_keys(self) -> Iterator[tuple[str, str]]:
        """The (channel, version) pairs whose value is a blob, not inline."""
        inline = self.checkpoint.get("channel_values") or {}
        for channel, version in (self.checkpoint.get("channel_versions") or {}).items():
            if channel not in inline:
                yield channel, str(version)


def _decode_row(serde: SerializerProtocol, row: tuple[Any, ...]) -> _Stored:
    pk, thread_id, checkpoint_ns, checkpoint_id, parent_id, checkpoint, metadata = row
    return _Stored(
        pk=pk,
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=parent_id,
        checkpoint=_from_json(serde, checkpoint),
        metadata=_from_json(serde, metadata or {}),
    )


def _load_tuple(serde: SerializerProtocol, stored: _Stored) -> CheckpointTuple:
    """The ``CheckpointTuple`` LangGraph expects, values deserialized."""
    channel_values = dict(stored.checkpoint.get("channel_values") or {})
    for channel, (type_, data) in stored.blobs.items():
        if type_ != "empty":
            channel_values[channel] = serde.loads_typed((type_, bytes(data or b"")))
    pending_writes: list[PendingWrite] = [
        (task_id, channel, serde.loads_typed((type_, bytes(data)))) for task_id, channel, type_, data in stored.writes
    ]
    parent_config: RunnableConfig | None = None
    if stored.parent_checkpoint_id:
        parent_config = {
            "configurable": {
                "thread_id": stored.thread_id,
                "checkpoint_ns": stored.checkpoint_ns,
                "checkpoint_id": stored.parent_checkpoint_id,
            }
        }
    return CheckpointTuple(
        config={
            "configurable": {
                "thread_id": stored.thread_id,
                "checkpoint_ns": stored.checkpoint_ns,
                "checkpoint_id": stored.checkpoint_id,
            }
        },
        checkpoint={**stored.checkpoint, "channel_values": channel_values},  # type: ignore[typeddict-item]
        metadata=stored.metadata,  # type: ignore[arg-type]
        parent_config=parent_config,
        pending_writes=pending_writes,
    )


@dataclass(frozen=True, slots=True)
class _ListQuery:
    """What ``list`` was asked for, in the terms the page fetcher needs."""

    thread_id: str | None
    checkpoint_ns: str | None
    checkpoint_id: str | None
    before_id: str | None
    filter: dict[str, Any] | None
    limit: int | None

    @classmethod
    def from_args(
        cls,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> _ListQuery:
        configurable = (config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        return cls(
            thread_id=None if thread_id is None else str(thread_id),
            # As in LangGraph's savers: no namespace in the config means all of them.
            checkpoint_ns=configurable.get("checkpoint_ns"),
            checkpoint_id=configurable.get("checkpoint_id") or None,
            before_id=get_checkpoint_id(before) if before else None,
            filter=filter or None,
            limit=None if limit is None else int(limit),
        )


# Keyset cursor of list(): (checkpoint_id, pk) of the last row examined.
_Cursor = tuple[str, int]


# --- connections of short-lived threads --------------------------------------------

_thread_closers = threading.local()


class _CloseWithThread:
    """Closes a thread's connection when the thread ends.

    LangGraph's sync loop calls ``put``/``put_writes`` from a thread pool it
    creates for each run. Each of those threads opens its own Django
    connection, and no request end closes it: it lingers until the cyclic GC
    finds it, so a busy worker piles up Postgres connections. A thread's
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


# --- the saver -------------------------------------------------------------------


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
    def _save_checkpoint(self, row: CheckpointRow, blobs: list[CheckpointBlob]) -> None:
        # Blobs first, so a reader who sees the checkpoint finds its values;
        # both in one transaction, one commit per step.
        with transaction.atomic(using=self.using):
            if blobs:
                # A version's value never changes: a second write of it is a no-op.
                CheckpointBlob.objects.using(self.using).bulk_create(blobs, ignore_conflicts=True)
            CheckpointRow.objects.using(self.using).bulk_create(
                [row],
                update_conflicts=True,
                unique_fields=_CHECKPOINT_KEY,
                update_fields=["checkpoint", "metadata", "run_id"],
            )

    @_db_step
    def _save_writes(self, rows: list[CheckpointWrite], upsert: bool) -> None:
        if not rows:
            return
        manager = CheckpointWrite.objects.using(self.using)
        with transaction.atomic(using=self.using):
            if upsert:
                manager.bulk_create(
                    rows,
                    update_conflicts=True,
                    unique_fields=_WRITE_KEY,
                    update_fields=["channel", "type", "blob", "task_path"],
                )
            else:
                manager.bulk_create(rows, ignore_conflicts=True)

    def _attach_values(self, rows: list[_Stored]) -> None:
        """Read the blobs and pending writes of ``rows``: one query each per thread and namespace."""
        groups: dict[tuple[str, str], list[_Stored]] = defaultdict(list)
        for row in rows:
            groups[(row.thread_id, row.checkpoint_ns)].append(row)
        for (thread_id, checkpoint_ns), group in groups.items():
            wanted = sorted({key for row in group for key in row.blob_keys()})
            found: dict[tuple[str, str], tuple[str, bytes | None]] = {}
            for chunk in _chunks(wanted, BLOB_KEYS_PER_QUERY):
                pairs = Q()
                for channel, version in chunk:
                    pairs |= Q(channel=channel, version=version)
                blobs = (
                    CheckpointBlob.objects.using(self.using)
                    .filter(pairs, thread_id=thread_id, checkpoint_ns=checkpoint_ns)
                    .values_list("channel", "version", "type", "blob")
                )
                for channel, version, type_, data in blobs:
                    found[(channel, version)] = (type_, data)
            for row in group:
                row.blobs = {channel: found[(channel, v)] for channel, v in row.blob_keys() if (channel, v) in found}

            by_id = {row.checkpoint_id: row for row in group}
            writes = (
                CheckpointWrite.objects.using(self.using)
                .filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns, checkpoint_id__in=list(by_id))
                # writes_sort_key: the order the pregel loop applies a step's writes in.
                .order_by("checkpoint_id", "task_path", "task_id", "idx")
                .values_list("checkpoint_id", "task_id", "channel", "type", "blob")
            )
            for checkpoint_id, task_id, channel, type_, data in writes:
                by_id[checkpoint_id].writes.append((task_id, channel, type_, data))

    @_db_step
    def _fetch_tuple(self, config: RunnableConfig) -> _Stored | None:
        thread_id, checkpoint_ns = _thread_key(config)
        rows = CheckpointRow.objects.using(self.using).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
        if checkpoint_id := get_checkpoint_id(config):
            rows = rows.filter(checkpoint_id=checkpoint_id)
        found = rows.order_by("-checkpoint_id").values_list(*_ROW_FIELDS).first()
        if found is None:
            return None
        stored = _decode_row(self.serde, found)
        self._attach_values([stored])
        return stored

    @_db_step
    def _fetch_page(self, query: _ListQuery, want: int, cursor: _Cursor | None) -> tuple[list[_Stored], _Cursor | None]:
        """Up to ``want`` matching checkpoints after ``cursor``, newest first, and the next cursor.

        The cursor is None once nothing older is left. Without a metadata filter
        this is one query for the rows; with one, rows are read a page at a time
        and matched in Python, so ``limit`` counts matches, not rows read.
        """
        rows = CheckpointRow.objects.using(self.using).all()
        if query.thread_id is not None:
            rows = rows.filter(thread_id=query.thread_id)
        if query.checkpoint_ns is not None:
            rows = rows.filter(checkpoint_ns=query.checkpoint_ns)
        if query.checkpoint_id:
            rows = rows.filter(checkpoint_id=query.checkpoint_id)
        if query.before_id:
            rows = rows.filter(checkpoint_id__lt=query.before_id)
        if query.filter and type(run_id := query.filter.get("run_id")) is str:
            rows = rows.filter(run_id=run_id)  # the indexed copy; Python still checks the rest
        rows = rows.order_by("-checkpoint_id", "-id")

        found: list[_Stored] = []
        while len(found) < want:
            page = rows
            if cursor is not None:
                page = rows.filter(Q(checkpoint_id__lt=cursor[0]) | Q(checkpoint_id=cursor[0], id__lt=cursor[1]))
            size = LIST_PAGE_SIZE if query.filter else want - len(found)
            batch = list(page.values_list(*_ROW_FIELDS)[:size])
            stopped_early = False
            for i, raw in enumerate(batch):
                cursor = (raw[3], raw[0])
                stored = _decode_row(self.serde, raw)
                if _metadata_matches(stored.metadata, query.filter):
                    found.append(stored)
                    if len(found) == want:
                        stopped_early = i < len(batch) - 1
                        break
            if len(batch) < size and not stopped_early:
                cursor = None  # read everything there was
                break
        self._attach_values(found)
        return found, cursor

    @_db_step
    def _copy_thread(self, source: str, target: str) -> None:
        # Keyset pages by pk, fully read before each insert: SQLite leaves
        # undefined what a cursor sees of rows inserted while it is open.
        with transaction.atomic(using=self.using):
            model: type[CheckpointBlob] | type[CheckpointRow] | type[CheckpointWrite]
            for model in (CheckpointBlob, CheckpointRow, CheckpointWrite):
                last_pk = 0
                while True:
                    batch = list(
                        model.objects.using(self.using)
                        .filter(thread_id=source, pk__gt=last_pk)
                        .order_by("pk")[:COPY_BATCH_SIZE]
                    )
                    if not batch:
                        break
                    last_pk = batch[-1].pk
                    for obj in batch:
                        obj.pk = None
                        obj.thread_id = target
                    # Idempotent: rows the target already has are kept, so a
                    # retried fork is harmless.
                    model.objects.using(self.using).bulk_create(batch, ignore_conflicts=True)

    def _delete_orphan_blobs(self, thread_id: str, checkpoint_ns: str, kept: Iterable[ChannelVersions]) -> None:
        """Delete the blobs of a thread and namespace that none of the ``kept`` channel versions point at.

        Blobs are shared between checkpoints (that is the point of them), so a
        blob goes only when no remaining checkpoint of its thread needs it.
        """
        referenced = {(channel, str(version)) for versions in kept for channel, version in versions.items()}
        blobs = CheckpointBlob.objects.using(self.using).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
        orphans = [
            pk
            for pk, channel, version in blobs.values_list("pk", "channel", "version")
            if (channel, version) not in referenced
        ]
        for chunk in _chunks(orphans, 500):
            CheckpointBlob.objects.using(self.using).filter(pk__in=chunk).delete()

    def _collect_garbage(self, thread_id: str, checkpoint_ns: str) -> None:
        """After checkpoints of a thread and namespace were deleted: drop their writes and unshared blobs."""
        remaining = CheckpointRow.objects.using(self.using).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns)
        kept_ids = list(remaining.values_list("checkpoint_id", flat=True))
        CheckpointWrite.objects.using(self.using).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns).exclude(
            checkpoint_id__in=kept_ids
        ).delete()
        # Only the versions, not whole checkpoints: a key lookup both backends run.
        kept = remaining.values_list("checkpoint__channel_versions", flat=True)
        self._delete_orphan_blobs(thread_id, checkpoint_ns, (_from_json(self.serde, v or {}) for v in kept))

    @_db_step
    def _delete_for_runs(self, run_ids: list[str]) -> None:
        with transaction.atomic(using=self.using):
            doomed = CheckpointRow.objects.using(self.using).filter(run_id__in=run_ids)
            groups = set(doomed.values_list("thread_id", "checkpoint_ns"))
            doomed.delete()
            for thread_id, checkpoint_ns in groups:
                self._collect_garbage(thread_id, checkpoint_ns)

    def _prune_keep_latest(self, thread_id: str) -> None:
        """Keep the newest checkpoint of each namespace, with what DeltaChannel state needs.

        A ``DeltaChannel`` rebuilds its value from its writes back to the
        nearest ancestor that stores a snapshot of it (see
        ``BaseCheckpointSaver.prune``): those ancestors and their writes stay
        too. The latest checkpoint's metadata names the delta channels
        (``counters_since_delta_snapshot``); threads without any keep one row.
        """
        rows = CheckpointRow.objects.using(self.using).filter(thread_id=thread_id)
        by_ns: dict[str, dict[str, _Stored]] = defaultdict(dict)
        for raw in rows.values_list(*_ROW_FIELDS):
            stored = _decode_row(self.serde, raw)
            by_ns[stored.checkpoint_ns][stored.checkpoint_id] = stored
        for checkpoint_ns, by_id in by_ns.items():
            latest = by_id[max(by_id)]
            keep = {latest.checkpoint_id}
            delta_channels = set(latest.metadata.get("counters_since_delta_snapshot") or ())
            if delta_channels:
                blob_keys = set(
                    CheckpointBlob.objects.using(self.using)
                    .filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns, channel__in=delta_channels)
                    .exclude(type="empty")
                    .values_list("channel", "version")
                )

                missing = delta_channels - _stored_channels(latest, delta_channels, blob_keys)
                parent = latest.parent_checkpoint_id
                while missing and parent in by_id:
                    keep.add(parent)
                    missing -= _stored_channels(by_id[parent], delta_channels, blob_keys)
                    parent = by_id[parent].parent_checkpoint_id
            doomed = [row.pk for row in by_id.values() if row.checkpoint_id not in keep]
            for chunk in _chunks(doomed, 500):
                CheckpointRow.objects.using(self.using).filter(pk__in=chunk).delete()
            CheckpointWrite.objects.using(self.using).filter(thread_id=thread_id, checkpoint_ns=checkpoint_ns).exclude(
                checkpoint_id__in=keep
            ).delete()
            self._delete_orphan_blobs(
                thread_id, checkpoint_ns, (by_id[cid].checkpoint.get("channel_versions") or {} for cid in keep)
            )

    # --- the BaseCheckpointSaver API, sync ---------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config``, or the thread's latest without a ``checkpoint_id``."""
        stored = self._fetch_tuple(config)
        return None if stored is None else _load_tuple(self.serde, stored)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; ``filter`` matches metadata as jsonb ``@>`` does."""
        query = _ListQuery.from_args(config, filter, before, limit)
        remaining, cursor = query.limit, None
        while remaining is None or remaining > 0:
            want = LIST_PAGE_SIZE if remaining is None else min(remaining, LIST_PAGE_SIZE)
            page, cursor = self._fetch_page(query, want, cursor)
            for stored in page:
                yield _load_tuple(self.serde, stored)
            if remaining is not None:
                remaining -= len(page)
            if cursor is None:
                return

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the blobs of its new channel versions, in one transaction."""
        row, blobs = _dump_checkpoint(self.serde, config, checkpoint, metadata, new_versions)
        self._save_checkpoint(row, blobs)
        return _next_config(config, checkpoint)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes on the checkpoint it started from, in one statement."""
        rows, upsert = _dump_writes(self.serde, config, writes, task_id, task_path)
        self._save_writes(rows, upsert)

    @_db_step
    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints, blobs and writes, in every namespace."""
        with transaction.atomic(using=self.using):
            for model in (CheckpointRow, CheckpointBlob, CheckpointWrite):
                model.objects.using(self.using).filter(thread_id=str(thread_id)).delete()

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's whole history (every namespace, blob and write) to another thread id.

        Checkpoint ids stay the same, so a checkpoint of the source can be
        resumed on the target. One transaction; idempotent: rows the target
        already has are left as they are. A missing source copies nothing.
        """
        self._copy_thread(str(source_thread_id), str(target_thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints made by these runs (``metadata["run_id"]``), their writes and unshared blobs."""
        if ids := [str(run_id) for run_id in run_ids]:
            self._delete_for_runs(ids)

    @_db_step
    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Retention. ``"keep_latest"`` keeps the newest checkpoint of each namespace, ``"delete"`` nothing.

        ``keep_latest`` also keeps the ancestors a ``DeltaChannel`` needs to
        rebuild its value, and every blob a kept checkpoint points at.
        """
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"Unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'.")
        ids = [str(thread_id) for thread_id in thread_ids]
        if not ids:
            return
        with transaction.atomic(using=self.using):
            if strategy == "delete":
                for model in (CheckpointRow, CheckpointBlob, CheckpointWrite):
                    model.objects.using(self.using).filter(thread_id__in=ids).delete()
            else:
                for thread_id in ids:
                    self._prune_keep_latest(thread_id)

    # --- async: serde work on the loop, the ORM in sync_to_async ----------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        stored = await sync_to_async(self._fetch_tuple)(config)
        return None if stored is None else _load_tuple(self.serde, stored)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        query = _ListQuery.from_args(config, filter, before, limit)
        remaining, cursor = query.limit, None
        while remaining is None or remaining > 0:
            want = LIST_PAGE_SIZE if remaining is None else min(remaining, LIST_PAGE_SIZE)
            page, cursor = await sync_to_async(self._fetch_page)(query, want, cursor)
            for stored in page:
                yield _load_tuple(self.serde, stored)
            if remaining is not None:
                remaining -= len(page)
            if cursor is None:
                return

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        row, blobs = _dump_checkpoint(self.serde, config, checkpoint, metadata, new_versions)
        await sync_to_async(self._save_checkpoint)(row, blobs)
        return _next_config(config, checkpoint)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        rows, upsert = _dump_writes(self.serde, config, writes, task_id, task_path)
        await sync_to_async(self._save_writes)(rows, upsert)

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
