"""The WebSocket route of last resort: a path no app serves is refused, never an exception.

Channels' ``URLRouter`` raises ``ValueError`` for a path it has no route for,
which the server answers with a 500 and a traceback in its log.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

NOT_FOUND = 4404


class NotFoundConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.close(code=NOT_FOUND)
