"""What ``put``, ``put_writes`` and the reads turn into and out of: plain rows, no database, no ORM.

Shared by both storage paths (Postgres SQL and the portable ORM) and by the sync
and async methods. The layout mirrors LangGraph's checkpoint-postgres saver: a
checkpoint row with small primitive channel values inline in its JSON, one blob
row per channel *version* that changed, and pending-write rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from orchestrator.checkpointer.encoding import SERDE_MARKER, from_json, is_inline, to_json
from orchestrator.errors import LeaseLost

# The key of the optional lease in ``config["configurable"]`` (see ``Lease``).
LEASE_KEY = "loopgate_lease"


class Lease(NamedTuple):
    """The writer's lease: every write is refused, in its own statement, unless the
    execution's ``lease_owner`` is still ``token`` (fencing a worker that lost its lease)."""

    execution_id: str
    token: str


class LeaseRefused(LeaseLost):
    """A checkpoint write refused, and nothing written: the execution's lease is no longer the writer's.

    A ``LeaseLost``, so the runner stops as it does when its heartbeat loses the lease.
    """

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"Checkpoint write on thread {thread_id} refused: the execution's lease has passed on.")


class CheckpointRecord(NamedTuple):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str
    checkpoint: Any  # JSON
    metadata: Any  # JSON
    run_id: str


class BlobRecord(NamedTuple):
    channel: str
    version: str
    type: str
    blob: bytes


class WriteRecord(NamedTuple):
    idx: int
    channel: str
    type: str
    blob: bytes


@dataclass(slots=True)
class WriteBatch:
    """One ``put_writes``: whose writes, and whether they overwrite (upsert) or keep what is stored."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    rows: list[WriteRecord]
    upsert: bool


def thread_key(config: RunnableConfig) -> tuple[str, str]:
    configurable = config["configurable"]
    return str(configurable["thread_id"]), configurable.get("checkpoint_ns") or ""


def lease_of(config: RunnableConfig) -> Lease | None:
    """The lease a runner put in the config, if any: plain LangGraph use has none."""
    raw = (config.get("configurable") or {}).get(LEASE_KEY)
    if raw is None:
        return None
    if isinstance(raw, Lease):
        return raw
    if isinstance(raw, dict):
        return Lease(str(raw["execution_id"]), str(raw["token"]))
    execution_id, token = raw
    return Lease(str(execution_id), str(token))


def dump_checkpoint(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> tuple[CheckpointRecord, list[BlobRecord]]:
    """The rows of one ``put``: the checkpoint and the blobs of its new channel versions.

    As in the Postgres saver, a non-inline value gets a blob only when its
    channel is in ``new_versions``; an unchanged channel points at the blob of
    its current version, written by an earlier checkpoint.
    """
    thread_id, checkpoint_ns = thread_key(config)
    inline: dict[str, Any] = {}
    blob_values: dict[str, Any] = {}
    for channel, value in checkpoint["channel_values"].items():
        (inline if is_inline(value) else blob_values)[channel] = value
    body = {**checkpoint, "channel_values": inline}
    stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
    run_id = stored_metadata.get("run_id")
    record = CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint["id"],
        parent_checkpoint_id=config["configurable"].get("checkpoint_id") or "",
        checkpoint=to_json(serde, body),
        metadata=to_json(serde, stored_metadata),
        run_id="" if run_id is None else str(run_id),
    )
    blobs = []
    for channel, version in new_versions.items():
        if channel in blob_values:
            type_, data = serde.dumps_typed(blob_values[channel])
            blobs.append(BlobRecord(channel, str(version), type_, data))
    return record, blobs


def next_config(config: RunnableConfig, checkpoint: Checkpoint) -> RunnableConfig:
    configurable = config["configurable"]
    return {
        "configurable": {
            "thread_id": configurable["thread_id"],
            "checkpoint_ns": configurable.get("checkpoint_ns") or "",
            "checkpoint_id": checkpoint["id"],
        }
    }


def dump_writes(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> WriteBatch:
    """The rows of one ``put_writes``, and whether they overwrite (upsert) or not.

    Like the Postgres saver: a batch made only of special channels (fixed
    negative slots from ``WRITES_IDX_MAP``) replaces what is in those slots, so
    a retried task's new error wins; any other batch keeps the writes already
    stored, since a task's successful writes never change.
    """
    thread_id, checkpoint_ns = thread_key(config)
    upsert = all(channel in WRITES_IDX_MAP for channel, _ in writes)
    rows: dict[int, WriteRecord] = {}
    for idx, (channel, value) in enumerate(writes):
        slot = WRITES_IDX_MAP.get(channel, idx)
        # One statement must not touch a key twice (Postgres refuses it for an
        # upsert): keep what row-by-row statements would leave, the last for
        # an upsert, the first otherwise.
        if slot in rows and not upsert:
            continue
        type_, data = serde.dumps_typed(value)
        rows[slot] = WriteRecord(slot, channel, type_, data)
    return WriteBatch(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=config["configurable"]["checkpoint_id"],
        task_id=task_id,
        task_path=task_path,
        rows=list(rows.values()),
        upsert=upsert,
    )


@dataclass(slots=True)
class Stored:
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
    # False until its blobs and writes are attached (the SQL path reads them with the row).
    complete: bool = False

    def blob_keys(self) -> Iterator[tuple[str, str]]:
        """The (channel, version) pairs whose value is a blob, not inline."""
        inline = self.checkpoint.get("channel_values") or {}
        for channel, version in (self.checkpoint.get("channel_versions") or {}).items():
            if channel not in inline:
                yield channel, str(version)


# The checkpoint columns every read selects, in this order (see decode_row).
ROW_FIELDS = ("id", "thread_id", "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id", "checkpoint", "metadata")


def _parse(serde: SerializerProtocol, value: Any) -> Any:
    """A JSON column's value: parsed already (the ORM), or its text (the SQL path), decoded either way.

    Text without the serde marker is plain JSON: parsed, no walk over it.
    """
    if isinstance(value, (str, bytes)):
        text = value
        # The standard parser: orjson turns integers beyond 64 bits into floats.
        value = json.loads(text)
        if SERDE_MARKER not in (text if isinstance(text, str) else text.decode()):
            return value
    return from_json(serde, value)


def decode_row(serde: SerializerProtocol, row: Sequence[Any]) -> Stored:
    pk, thread_id, checkpoint_ns, checkpoint_id, parent_id, checkpoint, metadata = row[:7]
    return Stored(
        pk=pk,
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=parent_id,
        checkpoint=_parse(serde, checkpoint),
        metadata=_parse(serde, metadata) or {},
    )


def stored_channels(stored: Stored, channels: set[str], blob_keys: set[tuple[str, str]]) -> set[str]:
    """Which of ``channels`` have a value stored at this checkpoint, inline or as a blob."""
    inline = stored.checkpoint.get("channel_values") or {}
    versions = stored.checkpoint.get("channel_versions") or {}
    return {ch for ch in channels if ch in inline or (ch, str(versions.get(ch))) in blob_keys}


def load_tuple(serde: SerializerProtocol, stored: Stored) -> CheckpointTuple:
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
class ListQuery:
    """What ``list`` was asked for, in the terms the page fetchers need."""

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
    ) -> ListQuery:
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

    @property
    def run_id(self) -> str | None:
        """The filter's run_id, which has an indexed copy; Python still checks the rest."""
        run_id = (self.filter or {}).get("run_id")
        return run_id if type(run_id) is str else None


# Keyset cursor of list(): (checkpoint_id, pk) of the last row examined.
Cursor = tuple[str, int]
