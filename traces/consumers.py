"""Live traces over WebSockets: a watched execution's new steps and status, and the executions list.

Channel-layer messages carry ids only; each consumer re-reads through the
selectors (which check the user) and sends the rendered fragment, which the
htmx WebSocket extension swaps in by id.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

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
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.guard_join()  # closed at logout, re-checked when the user's roles change

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.guard_leave()

    def allowed(self) -> bool:
        try:
            _get_execution(self.user, self.execution_id)
        except Http404:
            return False
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen; whatever they send is ignored."""

    async def trace_step(self, event: dict[str, Any]) -> None:
        if not await self.still_allowed():
            return
        html = await database_sync_to_async(_step_push)(self.user, self.execution_id, int(event["step_id"]))
        if html:
            await self.send(text_data=html)

    async def trace_execution(self, event: dict[str, Any]) -> None:
        if not await self.still_allowed():
            return
        html = await database_sync_to_async(_execution_push)(self.user, self.execution_id)
        if html:
            await self.send(text_data=html)


class ExecutionListConsumer(GuardedSocket, AsyncWebsocketConsumer):
    """``/ws/executions/``: rows of the executions list, replaced as their status, steps and tokens change."""

    group = ""

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        allowed = await database_sync_to_async(lambda: bool(roles.user_roles(self.user)))()
        if not allowed:
            await self.close()
            return
        self.group = live.EXECUTIONS_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.guard_join()  # closed at logout, re-checked when the user's roles change

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.guard_leave()

    def allowed(self) -> bool:
        return bool(roles.user_roles(self.user))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen."""

    async def trace_execution(self, event: dict[str, Any]) -> None:
        await self._row(event)

    async def trace_progress(self, event: dict[str, Any]) -> None:
        await self._row(event)

    async def _row(self, event: dict[str, Any]) -> None:
        if not await self.still_allowed():
            return
        html = await database_sync_to_async(_list_row)(self.user, UUID(event["execution_id"]))
        if html:
            await self.send(text_data=html)
