"""Each execution's event log: what its run streams, kept so that readers can join late.

The worker publishes every event of a run as it happens (state values, node updates,
LLM tokens as they arrive, custom events, tasks, checkpoints) and the web process
relays the log to whoever watches: SSE clients of the LangGraph-compatible API, the
execution page. A reader remembers the id of the last entry it saw and asks for what
came after it, so a reader that reconnects gets every later entry exactly once.

- With ``REDIS_URL``: one Redis stream per execution (``XADD`` with an approximate
  ``MAXLEN``; the stream ids are the entry ids), expiring
  ``LOOPGATE_STREAM_KEEP_SECONDS`` after the execution stops.
- Embedded: the same in process memory, a bounded list per execution and a
  condition variable (web and worker share the process there).

An entry is ``{"mode": ..., "ns": [...], "data": ...}``: LangGraph's stream mode,
the subgraph namespace, the chunk as plain JSON. The core adds two of its own:
``metadata`` (a run request began) and ``status`` (the execution's status changed;
a stopped status ends what a run streams). Which modes a run publishes is asked for
by whoever starts or resumes it (``request``); ``messages`` is always published,
for the browser. Nothing here knows the Agent Server's wire format (agent_api does).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings

from orchestrator.checkpointer import LEASE_KEY
from orchestrator.jsonable import to_jsonable

logger = logging.getLogger(__name__)
# LangGraph's own stream modes a run may publish ("debug" is always streamed, for the observers).
MODES = ("values", "updates", "messages", "custom", "tasks", "checkpoints", "debug")
ALWAYS = ("messages",)
STOPPED = ("interrupted", "succeeded", "failed", "cancelled", "budget_exceeded")
Entry = tuple[str, dict[str, Any]]


def _key(execution_id: UUID | str) -> str:
    return f"{settings.LOOPGATE_STREAM_PREFIX}:run:{execution_id}"


def _want_key(execution_id: UUID | str) -> str:
    return f"{settings.LOOPGATE_STREAM_PREFIX}:want:{execution_id}"


def _dumps(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


# --- the two logs --------------------------------------------------------------------------------


class RedisLog:
    """Redis streams. Reads block in Redis (``XREAD BLOCK``), never on a lock of ours."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        # No socket timeout: a blocking XREAD waits longer than redis-py's default of 5 s.
        self.client = redis.Redis.from_url(url, socket_timeout=None)
        self._aclients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def _aclient(self) -> Any:
        import redis.asyncio

        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = self._aclients[loop] = redis.asyncio.Redis.from_url(self.url, socket_timeout=None)
        return client

    def publish(self, key: str, entry: dict[str, Any], *, ttl: int) -> str:
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(key, {"e": _dumps(entry)}, maxlen=settings.LOOPGATE_STREAM_MAX_EVENTS, approximate=True)
        pipe.expire(key, ttl)
        return pipe.execute()[0].decode()

    def expire(self, key: str, ttl: int) -> None:
        self.client.expire(key, ttl)

    def last_id(self, key: str) -> str:
        found = self.client.xrevrange(key, count=1)
        return found[0][0].decode() if found else "0"

    def read(self, key: str, after: str, *, block: float) -> list[Entry]:
        found = self.client.xread({key: after}, count=500, block=max(1, int(block * 1000)) if block else None)
        return _entries(found)

    async def aread(self, key: str, after: str, *, block: float) -> list[Entry]:
        found = await self._aclient().xread({key: after}, count=500,
                                            block=max(1, int(block * 1000)) if block else None)
        return _entries(found)

    def set_value(self, key: str, value: str, *, ttl: int) -> None:
        self.client.set(key, value, ex=ttl)

    def get_value(self, key: str) -> str | None:
        value = self.client.get(key)
        return value.decode() if value is not None else None


def _entries(found: Any) -> list[Entry]:
    out: list[Entry] = []
    for _key_name, items in found or []:
        for entry_id, fields in items:
            out.append((entry_id.decode(), json.loads(fields[b"e"])))
    return out


@dataclass
class _MemoryStream:
    entries: deque[tuple[int, dict[str, Any]]]
    last: int = 0
    waiters: list[tuple[Any, asyncio.Future[None]]] = field(default_factory=list)


class MemoryLog:
    """The embedded mode's log: web and worker share the process. Ids are "<n>-0", as Redis spells them.
    Nothing expires on a clock here: the log keeps the newest ``LOOPGATE_STREAM_MAX_RUNS`` runs."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._streams: dict[str, _MemoryStream] = {}
        self._values: dict[str, str] = {}

    def _stream(self, key: str) -> _MemoryStream:
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _MemoryStream(entries=deque(maxlen=settings.LOOPGATE_STREAM_MAX_EVENTS))
            while len(self._streams) > settings.LOOPGATE_STREAM_MAX_RUNS:
                self._streams.pop(next(iter(self._streams)))
        return stream

    def publish(self, key: str, entry: dict[str, Any], *, ttl: int) -> str:
        # A round trip through JSON, as Redis makes it: readers never share the worker's objects.
        entry = json.loads(_dumps(entry))
        with self._lock:
            stream = self._stream(key)
            stream.last += 1
            stream.entries.append((stream.last, entry))
            waiters, stream.waiters = stream.waiters, []
            self._lock.notify_all()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)
        return f"{stream.last}-0"

    def expire(self, key: str, ttl: int) -> None:
        pass

    def last_id(self, key: str) -> str:
        with self._lock:
            stream = self._streams.get(key)
            return f"{stream.last}-0" if stream is not None else "0"

    def _after(self, key: str, after: str) -> list[Entry]:
        stream = self._streams.get(key)
        if stream is None:
            return []
        number = _number(after)
        return [(f"{n}-0", entry) for n, entry in stream.entries if n > number]

    def read(self, key: str, after: str, *, block: float) -> list[Entry]:
        with self._lock:
            found = self._after(key, after)
            if not found and block:
                self._lock.wait(block)
                found = self._after(key, after)
        return found

    async def aread(self, key: str, after: str, *, block: float) -> list[Entry]:
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._after(key, after)
            if found or not block:
                return found
            future: asyncio.Future[None] = loop.create_future()
            self._stream(key).waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, block)
        except asyncio.TimeoutError:
            pass
        with self._lock:
            return self._after(key, after)

    def set_value(self, key: str, value: str, *, ttl: int) -> None:
        with self._lock:
            self._values[key] = value

    def get_value(self, key: str) -> str | None:
        with self._lock:
            return self._values.get(key)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _number(entry_id: str) -> int:
    head = (entry_id or "0").split("-", 1)[0]
    return int(head) if head.isdigit() else 0


_log: RedisLog | MemoryLog | None = None
_log_lock = threading.Lock()


def log() -> RedisLog | MemoryLog:
    global _log
    if _log is None:
        with _log_lock:
            if _log is None:
                _log = RedisLog(settings.REDIS_URL) if settings.REDIS_URL else MemoryLog()
    return _log


# --- what the core writes -------------------------------------------------------------------------


def publish(execution_id: UUID | str, mode: str, data: Any, ns: tuple[str, ...] | list[str] = ()) -> str:
    """Append one entry to the execution's log; its id."""
    return log().publish(_key(execution_id), {"mode": mode, "ns": list(ns), "data": data},
                         ttl=settings.LOOPGATE_STREAM_LIVE_SECONDS)


def request(execution_id: UUID | str, *, modes: list[str], subgraphs: bool = False) -> None:
    """Ask the worker that runs (or will run) the execution to publish these modes too. A later
    request (a resume) adds its modes to the earlier ones'."""
    wanted = requested(execution_id)
    merged = {"modes": sorted(set(wanted.modes) | {m for m in modes if m in MODES}),
              "subgraphs": wanted.subgraphs or subgraphs}
    log().set_value(_want_key(execution_id), json.dumps(merged), ttl=settings.LOOPGATE_STREAM_LIVE_SECONDS)


@dataclass
class Wanted:
    modes: list[str]
    subgraphs: bool = False

    @property
    def stream_modes(self) -> list[str]:
        """What the runner asks LangGraph for: debug (the observers), the always-published modes, the rest."""
        return ["debug", *[m for m in MODES if m != "debug" and (m in ALWAYS or m in self.modes)]]


def requested(execution_id: UUID | str) -> Wanted:
    raw = log().get_value(_want_key(execution_id))
    if not raw:
        return Wanted(modes=[])
    found = json.loads(raw)
    return Wanted(modes=list(found.get("modes") or []), subgraphs=bool(found.get("subgraphs")))


def status_changed(execution_id: UUID, status: str) -> None:
    """After commit, from the execution services: a stopped status closes what the run streams
    (with the error of a failed run), and the log then expires after a while."""
    if status not in STOPPED:
        return
    data: dict[str, Any] = {"status": status}
    if status in ("failed", "budget_exceeded"):
        from orchestrator.models import Execution

        error = Execution.objects.filter(id=execution_id).values_list("error", flat=True).first() or {}
        data["error"] = {"error": error.get("type") or ("BudgetExceeded" if status == "budget_exceeded" else "Error"),
                         "message": error.get("message") or error.get("reason") or status}
    key = _key(execution_id)
    log().publish(key, {"mode": "status", "ns": [], "data": data}, ttl=settings.LOOPGATE_STREAM_LIVE_SECONDS)
    log().expire(key, settings.LOOPGATE_STREAM_KEEP_SECONDS)


def sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One event in the Server-Sent Events text format (JSON data on one line)."""
    line = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    text = f"event: {event}\r\ndata: {line}\r\n"
    if event_id:
        text += f"id: {event_id}\r\n"
    return (text + "\r\n").encode()


# --- what readers use -----------------------------------------------------------------------------


def last_id(execution_id: UUID | str) -> str:
    return log().last_id(_key(execution_id))


def read(execution_id: UUID | str, after: str = "0", *, block: float = 0) -> list[Entry]:
    """Entries after ``after`` (``"0"``: from the start), waiting up to ``block`` seconds for one."""
    return log().read(_key(execution_id), after or "0", block=block)


async def aread(execution_id: UUID | str, after: str = "0", *, block: float = 0) -> list[Entry]:
    return await log().aread(_key(execution_id), after or "0", block=block)


# --- what the runner uses -------------------------------------------------------------------------


class Publisher:
    """One advance of one execution: which modes to ask LangGraph for, and each chunk published as it comes."""

    def __init__(self, execution_id: UUID) -> None:
        self.execution_id = execution_id
        self.broken = False
        try:
            self.wanted = requested(execution_id)
        except Exception:  # noqa: BLE001 - the log is a courtesy to watchers; the run goes on without it
            logger.warning("event log unreachable; %s runs without publishing", execution_id, exc_info=True)
            self.wanted, self.broken = Wanted(modes=[]), True

    @property
    def stream_modes(self) -> list[str]:
        return self.wanted.stream_modes

    @property
    def subgraphs(self) -> bool:
        return self.wanted.subgraphs

    def split(self, chunk: Any) -> tuple[tuple[str, ...], str, Any]:
        """LangGraph's chunk as ``(namespace, mode, event)``, with or without subgraphs."""
        if self.subgraphs:
            ns, mode, event = chunk
            return tuple(ns), mode, event
        mode, event = chunk
        return (), mode, event

    def publish(self, ns: tuple[str, ...], mode: str, event: Any) -> None:
        """Publish what someone asked for; debug events of the root graph only when asked."""
        if self.broken or (mode == "debug" and "debug" not in self.wanted.modes):
            return
        try:
            publish(self.execution_id, mode, plain(event), ns)
        except Exception:  # noqa: BLE001 - as above: stop publishing, never stop the run
            logger.warning("event log unreachable; %s stops publishing", self.execution_id, exc_info=True)
            self.broken = True


def plain(value: Any) -> Any:
    """JSON as LangGraph's server writes it: messages whole (``model_dump``), the rest by ``to_jsonable``;
    without the lease token of a checkpoint's config."""
    from langchain_core.messages import BaseMessage

    if isinstance(value, dict):
        # A checkpoint's config carries the worker's lease token: it stays in the worker.
        return {str(k): plain(v) for k, v in value.items() if k != LEASE_KEY}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, BaseMessage):
        return to_jsonable(value.model_dump())
    return to_jsonable(value)
