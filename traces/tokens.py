"""An LLM message growing on the execution page, token by token, from the execution's event log
(``orchestrator.streams``, where the worker publishes every token as it arrives).

Server-Sent Events for the page's ``EventSource``: ``token`` ``{"id", "node", "text", "done"}``
(``text`` is what the token adds; on connect, the message being generated so far, whole),
then ``end`` once the execution has finished. The page puts the text in with ``textContent``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from orchestrator import streams
from orchestrator.models import Execution

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 10.0
FINISHED = ("succeeded", "failed", "cancelled", "budget_exceeded")


def _finished(execution_id: UUID) -> bool:
    close_old_connections()
    status = Execution.objects.filter(id=execution_id).values_list("status", flat=True).first()
    return status is None or status in FINISHED


def token(entry: dict[str, Any]) -> dict[str, Any] | None:
    """A ``messages`` entry as what the page shows: an AI message's text, which node, whether it is whole."""
    if entry.get("mode") != "messages" or not isinstance(entry.get("data"), list) or len(entry["data"]) != 2:
        return None
    chunk, metadata = entry["data"]
    if not isinstance(chunk, dict) or "ai" not in str(chunk.get("type", "")).lower():
        return None
    content = chunk.get("content")
    if isinstance(content, list):  # content blocks: their text
        content = "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    finished = bool((chunk.get("response_metadata") or {}).get("finish_reason")) or chunk.get("chunk_position") == "last"
    return {"id": str(chunk.get("id") or ""), "node": str((metadata or {}).get("langgraph_node") or ""),
            "text": str(content or ""), "done": finished or "chunk" not in str(chunk.get("type", "")).lower()}


def _catch_up(entries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """The newest message of the log so far, whole (a page opened mid-answer starts with what it missed)."""
    current: dict[str, Any] | None = None
    for _entry_id, entry in entries:
        found = token(entry)
        if found is None:
            continue
        if current is None or current["id"] != found["id"] or not found["id"]:
            current = dict(found)
        elif "chunk" in str(entry["data"][0].get("type", "")).lower():
            current = {**found, "text": current["text"] + found["text"]}
        else:
            current = dict(found)
    return current


async def token_events(execution_id: UUID, after: str | None) -> AsyncIterator[bytes]:
    cursor = after or "0"
    if not after:
        entries: list[tuple[str, dict[str, Any]]] = []
        while batch := await streams.aread(execution_id, cursor):
            entries.extend(batch)
            cursor = batch[-1][0]
        whole = _catch_up(entries)
        if whole is not None:
            yield streams.sse("token", whole, cursor)
    quiet = 0.0
    while True:
        entries = await streams.aread(execution_id, cursor, block=POLL_SECONDS)
        for entry_id, entry in entries:
            cursor = entry_id
            found = token(entry)
            if found is not None:
                yield streams.sse("token", found, entry_id)
        if entries:
            quiet = 0.0
            continue
        if await sync_to_async(_finished, thread_sensitive=False)(execution_id):
            yield streams.sse("end", {})
            return
        quiet += POLL_SECONDS
        if quiet >= HEARTBEAT_SECONDS:
            quiet = 0.0
            yield b": heartbeat\r\n\r\n"
