"""Live traces over WebSockets: a watched execution's new steps and status, and the executions list.

Channel-layer messages carry ids only; a consumer re-reads through the
selectors (which check the user) and sends the rendered fragment, which the
htmx WebSocket extension swaps in by id. The execution page's fragments are
rendered once per step and set of roles in a process and shared by its sockets
(``_rendered_once``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from orchestrator import roles
from orchestrator import selectors as core
from orchestrator.sockets import GuardedSocket
from traces import fragments, live
from traces.models import Step

logger = logging.getLogger(__name__)


def _get_execution(user: Any, execution_id: UUID) -> Any:
    return core.execution_get_for_user(user=user, execution_id=execution_id)


def _step_push(user: Any, execution_id: UUID, step_id: int) -> str:
    try:
        execution = core.execution_get_for_user(user=user, execution_id=execution_id)
    except Http404:
        return ""
    step = Step.objects.filter(execution=execution, id=step_id).first()
    if step is None:
        return ""
    return fragments.render_step_push(execution=execution, step=step, user=user)


def _execution_push(user: Any, execution_id: UUID) -> str:
    try:
        execution = core.execution_get_for_user(user=user, execution_id=execution_id)
    except Http404:
        return ""
    return fragments.render_execution_push(execution=execution, user=user)


def _list_row(user: Any, execution_id: UUID) -> str:
    try:
        execution = core.execution_get_for_user(user=user, execution_id=execution_id)
    except Http404:
        return ""
    return fragments.render_list_row(execution=execution)


# A push's fragment depends on the execution and the viewer's roles only (every role reads every
# execution; role_context gives the flags): one render serves every socket of this process that
# asks for the same step with the same roles, while it renders and for a moment after. With 100
# sockets on one execution, rendering per socket put each step seconds behind (docs/PERFORMANCE.md).
RENDER_REUSE_SECONDS = 2.0
_renders: dict[tuple[Any, ...], asyncio.Future[str]] = {}


async def _role_key(user: Any) -> frozenset[str]:
    cached = getattr(user, "_loopgate_roles", None)  # set by roles.user_roles when the socket was checked
    if cached is None:
        cached = await database_sync_to_async(roles.user_roles)(user)
    return frozenset(cached)


async def _rendered_once(key: tuple[Any, ...], render: Callable[[], str], *, reuse: float = RENDER_REUSE_SECONDS) -> str:
    """``render()``'s fragment, rendered once for every socket that asks with the same ``key`` while it
    renders and for ``reuse`` seconds after."""
    loop = asyncio.get_running_loop()
    key = (id(loop), *key)
    shared = _renders.get(key)
    if shared is not None and shared.get_loop() is loop:
        try:
            return await asyncio.shield(shared)
        except Exception:  # noqa: BLE001 - the shared render failed: render for this socket alone
            return await database_sync_to_async(render)()
    future: asyncio.Future[str] = loop.create_future()
    _renders[key] = future
    try:
        html = await database_sync_to_async(render)()
    except BaseException as exc:
        _forget(key, future)
        future.set_exception(RuntimeError(f"render failed: {exc!r}"))
        future.exception()  # retrieved: only the sockets waiting on it care
        raise
    future.set_result(html)
    loop.call_later(reuse, _forget, key, future)
    return html


def _forget(key: tuple[Any, ...], future: asyncio.Future[str]) -> None:
    if _renders.get(key) is future:
        del _renders[key]


class _Relay:
    """The one member of an execution's group in this process (event loop), for every socket here
    that watches the execution: a message crosses Redis once per process, not once per socket,
    and is handed to each socket's handler here. (A channel-layer message to each of 100 sockets
    cost a Redis pop and a thread hop apiece and left pushes seconds behind; docs/PERFORMANCE.md.)
    """

    _all: dict[tuple[int, str], _Relay] = {}

    def __init__(self, layer: Any, group: str) -> None:
        self.layer, self.group = layer, group
        self.sockets: set[Any] = set()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.channel = ""
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, layer: Any, group: str, socket: Any) -> None:
        key = (id(asyncio.get_running_loop()), group)
        relay = cls._all.get(key)
        if relay is None:
            relay = cls._all[key] = cls(layer, group)
            relay.sockets.add(socket)
            try:
                relay.channel = await layer.new_channel()
                await layer.group_add(group, relay.channel)
            except BaseException as exc:
                cls._all.pop(key, None)
                relay.ready.set_exception(RuntimeError(f"could not join {group}: {exc!r}"))
                relay.ready.exception()  # retrieved: the sockets waiting on it fail with their own error
                raise
            relay.task = asyncio.ensure_future(relay._run())
            relay.ready.set_result(None)
            return
        relay.sockets.add(socket)
        await asyncio.shield(relay.ready)

    @classmethod
    async def leave(cls, group: str, socket: Any) -> None:
        key = (id(asyncio.get_running_loop()), group)
        relay = cls._all.get(key)
        if relay is None:
            return
        relay.sockets.discard(socket)
        if relay.sockets or not relay.ready.done():
            return
        del cls._all[key]
        if relay.task is not None:
            relay.task.cancel()
        await relay.layer.group_discard(group, relay.channel)

    async def _run(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:  # noqa: BLE001 - Redis away: the sockets' pages still re-read on reload
                logger.warning("live relay of %s could not receive; retrying", self.group, exc_info=True)
                await asyncio.sleep(1.0)
                continue
            sockets = list(self.sockets)
            handler = get_handler_name(message)
            results = await asyncio.gather(*(getattr(s, handler)(message) for s in sockets if hasattr(s, handler)),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    logger.warning("a live push of %s failed", self.group, exc_info=result)


class ExecutionConsumer(GuardedSocket, AsyncWebsocketConsumer):
    """``/ws/executions/<uuid>/``: the execution page's live regions."""

    group = ""

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.execution_id: UUID = self.scope["url_route"]["kwargs"]["execution_id"]
        try:
            await database_sync_to_async(_get_execution)(self.user, self.execution_id)
        except Http404:
            await self.close()
            return
        self.group = live.execution_group(self.execution_id)
        await _Relay.join(self.channel_layer, self.group, self)
        await self.accept()
        await self.guard_join()  # closed at logout, re-checked when the user's roles change

    async def disconnect(self, code: int) -> None:
        if self.group:
            await _Relay.leave(self.group, self)
        await self.guard_leave()

    def allowed(self) -> bool:
        try:
            _get_execution(self.user, self.execution_id)
        except Http404:
            return False
        return True

    def allowed_key(self) -> Any:
        return ("execution", self.execution_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen; whatever they send is ignored."""

    async def trace_step(self, event: dict[str, Any]) -> None:
        if not await self.still_allowed():
            return
        step_id = int(event["step_id"])
        html = await _rendered_once(("step", self.execution_id, step_id, await _role_key(self.user)),
                                    partial(_step_push, self.user, self.execution_id, step_id))
        if html:
            await self.send(text_data=html)

    async def trace_execution(self, event: dict[str, Any]) -> None:
        if not await self.still_allowed():
            return
        # Shared only while it renders: the same status may come back with other facts (a resumed run).
        html = await _rendered_once(("execution", self.execution_id, event.get("status"), await _role_key(self.user)),
                                    partial(_execution_push, self.user, self.execution_id), reuse=0)
        if html:
            await self.send(text_data=html)


class ExecutionListConsumer(GuardedSocket, AsyncWebsocketConsumer):
    """``/ws/executions/``: rows of the executions list, replaced as their status, steps and tokens change.
    Like the execution page's sockets, those of a process share one relay and one render per row."""

    group = ""

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        allowed = await database_sync_to_async(lambda: bool(roles.user_roles(self.user)))()
        if not allowed:
            await self.close()
            return
        self.group = live.EXECUTIONS_GROUP
        await _Relay.join(self.channel_layer, self.group, self)
        await self.accept()
        await self.guard_join()  # closed at logout, re-checked when the user's roles change

    async def disconnect(self, code: int) -> None:
        if self.group:
            await _Relay.leave(self.group, self)
        await self.guard_leave()

    def allowed(self) -> bool:
        return bool(roles.user_roles(self.user))

    def allowed_key(self) -> Any:
        return "executions"

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen."""

    async def trace_execution(self, event: dict[str, Any]) -> None:
        await self._row(event)

    async def trace_progress(self, event: dict[str, Any]) -> None:
        await self._row(event)

    async def _row(self, event: dict[str, Any]) -> None:
        if not await self.still_allowed():
            return
        execution_id = UUID(event["execution_id"])
        # A row is the same for every viewer (every role reads every execution): the sockets of this
        # process share one render of it while it is under way.
        html = await _rendered_once(("row", execution_id, event.get("type"), event.get("status")),
                                    partial(_list_row, self.user, execution_id), reuse=0)
        if html:
            await self.send(text_data=html)
