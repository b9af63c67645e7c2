"""Runs streamed as Server-Sent Events, in the Agent Server's format: ``runs.stream``,
``runs.join_stream`` and stateless ``/runs/stream``.

The worker that runs the execution publishes each event to the execution's log
(``orchestrator.streams``); these async views relay the log as SSE and never run
the graph. The wire format is the Agent Server's (``langgraph dev`` answers the same,
tests/agent_api/test_reference.py): ``metadata`` first (``run_id``, ``attempt``), then
each requested mode's events under its name (``values``, ``updates``, ``custom``,
``tasks``, ``checkpoints``, ``debug``; ``mode|<namespace>`` for a subgraph's with
``stream_subgraphs``), ``messages`` as ``messages/metadata`` + ``messages/partial``
(the message so far) or, for ``messages-tuple``, ``messages`` ``[chunk, metadata]``;
``error`` ``{"error", "message"}`` when the run fails. Like the Agent Server, the stream
then simply ends: no ``end`` event. With ``stream_resumable`` (and always on a join)
each event carries an ``id:``; ``Last-Event-ID`` (or join's ``last_event_id``) resumes
after it, each later event exactly once.

``events`` is a subset: ``on_chat_model_stream`` for each LLM token (LangGraph's
``astream_events`` would run the graph here, in the web process).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

from agent_api import api, selectors, services, shapes
from agent_api.auth import ApiKeyAuthentication
from agent_api.models import QueuedRun, Run
from orchestrator import streams
from orchestrator.errors import InvalidState
from orchestrator.models import Execution

logger = logging.getLogger(__name__)
STREAM_MODES = ("values", "updates", "messages", "messages-tuple", "debug", "events", "custom", "tasks",
                "checkpoints")
POLL_SECONDS = 1.0  # how long a read waits for the log before the run's status is looked at
HEARTBEAT_SECONDS = 5.0  # an SSE comment when nothing happened for this long (proxies close quiet sockets)
ACTIVE = (Execution.Status.QUEUED, Execution.Status.RUNNING)


@dataclass
class StreamRequest:
    modes: list[str]
    subgraphs: bool = False
    resumable: bool = False
    cancel_on_disconnect: bool = False

    @property
    def log_modes(self) -> list[str]:
        """The LangGraph modes the worker must publish for these."""
        wanted = {"messages" if m in ("messages", "messages-tuple", "events") else m for m in self.modes}
        return sorted(m for m in wanted if m in streams.MODES)


def stream_request(modes: Any, *, subgraphs: Any = False, resumable: Any = False,
                   on_disconnect: Any = None) -> StreamRequest:
    """Read (and check) what a stream asks for; LangGraph's default mode is ``values``."""
    if modes in (None, "", []):
        modes = ["values"]
    if isinstance(modes, str):
        modes = [modes]
    if not isinstance(modes, list) or not all(isinstance(m, str) for m in modes):
        raise ValidationError({"stream_mode": "A stream mode or a list of them."})
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown:
        raise ValidationError({"stream_mode": f"Unknown stream mode {unknown[0]!r}; choose from "
                                              f"{', '.join(STREAM_MODES)}."})
    if on_disconnect not in (None, "cancel", "continue"):
        raise ValidationError({"on_disconnect": "Use cancel or continue."})
    for name, value in (("stream_subgraphs", subgraphs), ("stream_resumable", resumable)):
        if value is not None and not isinstance(value, bool):
            raise ValidationError({name: "Must be true or false."})
    return StreamRequest(modes=list(dict.fromkeys(modes)), subgraphs=bool(subgraphs), resumable=bool(resumable),
                         cancel_on_disconnect=on_disconnect == "cancel")


# --- the wire format ---------------------------------------------------------------------------------


class Wire:
    """Turns log entries into the Agent Server's events for one stream's modes. Keeps the messages
    seen so far: ``messages/partial`` carries the whole message up to its newest token."""

    def __init__(self, wanted: StreamRequest) -> None:
        self.modes = set(wanted.modes)
        self.subgraphs = wanted.subgraphs
        self.messages: dict[str, Any] = {}

    def events(self, entry: dict[str, Any]) -> list[tuple[str, Any]]:
        mode, ns, data = entry.get("mode"), entry.get("ns") or [], entry.get("data")
        if mode == "metadata":
            return [("metadata", data)]
        if mode == "status":
            return [("error", data["error"])] if isinstance(data, dict) and data.get("error") else []
        if ns and not self.subgraphs:
            return []
        name = f"{mode}|{'|'.join(ns)}" if ns else str(mode)
        if mode == "messages":
            return self._messages(data, ns)
        if mode == "debug" and isinstance(data, dict) and data.get("type") == "checkpoint":
            data = {**data, "payload": _debug_checkpoint(data.get("payload") or {})}
        return [(name, data)] if mode in self.modes else []

    def _messages(self, data: Any, ns: list[str]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if "messages-tuple" in self.modes:
            out.append((f"messages|{'|'.join(ns)}" if ns else "messages", data))
        if "messages" in self.modes:
            out.extend(self._accumulate(data))
        if "events" in self.modes:
            chunk, metadata = data
            out.append(("events", {"event": "on_chat_model_stream", "name": metadata.get("ls_model_name") or "",
                                   "run_id": chunk.get("id") or "", "tags": metadata.get("tags") or [],
                                   "metadata": metadata, "data": {"chunk": chunk}, "parent_ids": []}))
        return out

    def _accumulate(self, data: Any) -> list[tuple[str, Any]]:
        from langchain_core.messages import AIMessageChunk, BaseMessageChunk, convert_to_messages
        from langchain_core.messages.utils import message_chunk_to_message

        raw, metadata = data
        if not isinstance(raw, dict):
            return []
        is_chunk = "chunk" in str(raw.get("type", "")).lower()
        message = AIMessageChunk(**{k: v for k, v in raw.items() if k != "type"}) if is_chunk \
            else convert_to_messages([raw])[0]
        out: list[tuple[str, Any]] = []
        key = message.id or ""
        if key in self.messages:
            self.messages[key] = self.messages[key] + message
        else:
            self.messages[key] = message
            out.append(("messages/metadata", {key: {"metadata": metadata}}))
        whole = self.messages[key]
        name = "messages/partial" if isinstance(whole, BaseMessageChunk) else "messages/complete"
        out.append((name, [streams.plain(message_chunk_to_message(whole))]))
        return out


def _debug_checkpoint(payload: dict[str, Any]) -> dict[str, Any]:
    """A debug checkpoint names its checkpoint and its parent's as the Agent Server does."""
    return {**payload, "checkpoint": shapes.checkpoint(payload.get("config")),
            "parent_checkpoint": shapes.checkpoint(payload.get("parent_config"))}


sse = streams.sse


# Event ids: a log entry's id ("<ms>-<seq>"); when one entry makes several events, all but the
# last carry "<entry id>.<n>", so a client cut off between them resumes at the next one.
def _position(event_id: str | None) -> tuple[int, int, float]:
    if not event_id:
        return (0, 0, -1)
    head, _, sub = event_id.partition(".")
    ms, _, seq = head.partition("-")
    try:
        return (int(ms), int(seq or 0), float(sub) if sub else float("inf"))
    except ValueError:
        raise ValidationError({"last_event_id": f"{event_id!r} is not an event id of this stream."}) from None


# --- the relay ---------------------------------------------------------------------------------------


def _run_state(run_id: str) -> tuple[bool, dict[str, Any] | None]:
    """(still going, the error of a failed run): read when the log is quiet."""
    close_old_connections()
    run = selectors.run_or_queued(run_id)
    if run is None:
        return False, None
    if isinstance(run, QueuedRun):
        return not (run.cancelled or run.error), None
    execution = run.execution
    if execution.status in ACTIVE:
        return True, None
    if execution.status in (Execution.Status.FAILED, Execution.Status.BUDGET_EXCEEDED):
        error = execution.error or {}
        return False, {"error": error.get("type") or "Error", "message": error.get("message") or error.get("reason")}
    return False, None


async def relay(run_id: str, wanted: StreamRequest, *, after: str | None, ids: bool) -> AsyncIterator[bytes]:
    """The run's events after event ``after`` (None: the ones published from now on), until the run stops."""
    wire = Wire(wanted)
    if after:
        skip = _position(after)
        cursor = _before(skip)
    else:
        cursor = await sync_to_async(streams.last_id, thread_sensitive=False)(run_id)
        skip = _position(cursor)
    if "messages" in wanted.modes:
        cursor = "0"  # messages/partial carries the whole message: read it from its first token
    quiet = 0.0
    while True:
        entries = await streams.aread(run_id, cursor, block=POLL_SECONDS)
        if not entries:
            going, error = await sync_to_async(_run_state, thread_sensitive=False)(run_id)
            if not going:
                entries = await streams.aread(run_id, cursor)
                if not entries:
                    if error:
                        yield sse("error", error)
                    return
            else:
                quiet += POLL_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield b": heartbeat\r\n\r\n"
                continue
        quiet = 0.0
        for entry_id, entry in entries:
            cursor = entry_id
            events = wire.events(entry)
            head = _position(entry_id)[:2]
            for index, (name, data) in enumerate(events):
                last = index == len(events) - 1
                if (*head, float("inf") if last else index) <= skip:
                    continue
                yield sse(name, data, (entry_id if last else f"{entry_id}.{index}") if ids else None)
            stopped = entry.get("mode") == "status" and (entry.get("data") or {}).get("status") in streams.STOPPED
            if stopped and (*head, float("inf")) > skip:
                return


def _before(position: tuple[int, int, float]) -> str:
    """The log id just before an entry: a read after it starts with that entry."""
    ms, seq, _ = position
    return f"{ms}-{seq - 1}" if seq else (f"{ms - 1}-18446744073709551615" if ms else "0")


def _cancel_after_disconnect(user: Any, run_id: str) -> None:
    """``on_disconnect="cancel"``: the client went away before the run ended."""
    try:
        run = selectors.run_or_queued(run_id)
        if isinstance(run, QueuedRun):
            services.queued_run_cancel(user=user, queued=run)
        elif run is not None and not run.execution.is_finished:
            services.run_cancel(user=user, run=run)
    except InvalidState:
        pass  # it ended meanwhile
    except Exception:  # noqa: BLE001 - logged; the client is gone, nobody else to tell
        logger.warning("could not cancel run %s after its client went away", run_id, exc_info=True)
    finally:
        close_old_connections()


async def _guarded(events: AsyncIterator[bytes], *, user: Any, run_id: str, cancel: bool) -> AsyncIterator[bytes]:
    ended = False
    try:
        async for chunk in events:
            yield chunk
        ended = True
    finally:
        if cancel and not ended:
            # The request's task is being cancelled: the cancel runs on a thread of its own.
            threading.Thread(target=_cancel_after_disconnect, args=(user, run_id), daemon=True).start()


def _response(events: AsyncIterator[bytes], *, thread_id: Any, run_id: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Location"] = f"/threads/{thread_id}/runs/{run_id}/stream"
    response["Content-Location"] = f"/threads/{thread_id}/runs/{run_id}"
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


# --- the views ---------------------------------------------------------------------------------------


def _api_request(request: HttpRequest) -> Request:
    """The request as the other agent_api endpoints see it: the same authentication (API token as
    ``x-api-key`` or ``Authorization: Token``, or a session with its CSRF check) and JSON parsing."""
    drf = Request(request, parsers=[JSONParser()],
                  authenticators=[ApiKeyAuthentication(), TokenAuthentication(), SessionAuthentication()])
    if not drf.user or not drf.user.is_authenticated:
        raise NotAuthenticated()
    return drf


def _error(exc: Exception, request: HttpRequest) -> HttpResponse:
    response = api.exception_handler(exc, {"request": request})
    if response is None:
        raise exc
    out = JsonResponse(response.data, status=response.status_code)
    for name, value in response.headers.items():
        if name.lower().startswith("www-authenticate") or name.lower() == "retry-after":
            out[name] = value
    return out


def _start_stream(request: HttpRequest, thread_id: str | None) -> tuple[Any, Run | QueuedRun, StreamRequest, str]:
    """Start the run and open its log, in one transaction: the worker is told to start only after
    the log holds ``metadata`` and knows which modes to publish."""
    close_old_connections()
    drf = _api_request(request)
    data = api._body(drf)
    wanted = stream_request(data.get("stream_mode"), subgraphs=data.get("stream_subgraphs"),
                            resumable=data.get("stream_resumable"), on_disconnect=data.get("on_disconnect"))
    began: dict[str, str] = {}

    def prepare(run: Run | QueuedRun) -> None:
        began["after"] = streams.last_id(run.pk)  # a resume goes on with the log of its execution
        streams.request(run.pk, modes=wanted.log_modes, subgraphs=wanted.subgraphs)
        streams.publish(run.pk, "metadata", {"run_id": str(run.pk), "attempt": 1})

    run = api._start(drf, thread_id, prepare=prepare)
    return drf.user, run, wanted, began["after"]


@csrf_exempt
@login_not_required
async def run_stream(request: HttpRequest, thread_id: str | None = None) -> HttpResponse:
    """``POST /threads/{thread_id}/runs/stream`` and stateless ``POST /runs/stream``."""
    if request.method != "POST":
        return JsonResponse({"message": "Use POST.", "code": "method_not_allowed", "extra": {}}, status=405)
    try:
        user, run, wanted, after = await sync_to_async(_start_stream, thread_sensitive=False)(request, thread_id)
    except Exception as exc:  # noqa: BLE001 - rendered as every agent_api error is, or raised again
        return await sync_to_async(_error, thread_sensitive=False)(exc, request)
    events = relay(str(run.pk), wanted, after=after, ids=wanted.resumable)
    return _response(_guarded(events, user=user, run_id=str(run.pk), cancel=wanted.cancel_on_disconnect),
                     thread_id=run.thread_id, run_id=run.pk)


def _open_join(request: HttpRequest, thread_id: str, run_id: str) -> tuple[Any, Run | QueuedRun, StreamRequest]:
    close_old_connections()
    drf = _api_request(request)
    thread = selectors.thread_get_for_user(user=drf.user, thread_id=thread_id)
    run = selectors.run_get_for_user(user=drf.user, thread=thread, run_id=run_id)
    params = request.GET
    wanted = stream_request([m for m in params.getlist("stream_mode") if m] or _stored_modes(run),
                            on_disconnect="cancel" if params.get("cancel_on_disconnect") in ("true", "True", "1", "yes")
                            else None)
    streams.request(run.pk, modes=wanted.log_modes)
    return drf.user, run, wanted


def _stored_modes(run: Run | QueuedRun) -> Any:
    kwargs = run.kwargs if isinstance(run, Run) else (run.request.get("kwargs") or {})
    return kwargs.get("stream_mode")


@csrf_exempt
@login_not_required
async def join_stream(request: HttpRequest, thread_id: str, run_id: str) -> HttpResponse:
    """``GET /threads/{thread_id}/runs/{run_id}/stream``: the run's events from now on, or after
    ``Last-Event-ID``, with the modes of its request unless ``stream_mode`` names others."""
    if request.method != "GET":
        return JsonResponse({"message": "Use GET.", "code": "method_not_allowed", "extra": {}}, status=405)
    last_event_id = request.headers.get("Last-Event-ID") or None
    try:
        if last_event_id:
            _position(last_event_id)
        user, run, wanted = await sync_to_async(_open_join, thread_sensitive=False)(request, thread_id, run_id)
    except Exception as exc:  # noqa: BLE001 - as run_stream
        return await sync_to_async(_error, thread_sensitive=False)(exc, request)
    events = relay(str(run.pk), wanted, after=last_event_id, ids=True)
    return _response(_guarded(events, user=user, run_id=str(run.pk), cancel=wanted.cancel_on_disconnect),
                     thread_id=run.thread_id, run_id=run.pk)

