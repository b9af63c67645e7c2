"""Channel-layer sends from sync code (workers, views, signal handlers), on one long-lived event loop.

``async_to_sync(layer.group_send)`` called from a plain thread makes a new event
loop and a new thread for each call, and the Redis channel layer keeps its
connections per event loop, so every announcement paid for a loop, a thread, a
Redis connection and its script load: ~25 ms a step in a worker (the runner
announces twice a step; docs/PERFORMANCE.md). Here every send of a process goes
to one daemon thread running one loop: the layer's connections stay open, the
caller does not wait, and the sends leave in the order they were made.

Announcements are a courtesy (pages re-read the database): a send that fails is
logged, never raised. The in-memory layer of the embedded mode keeps the direct
call: its queues belong to the loop that reads them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)


class _Sender:
    """One loop on a daemon thread, started on first use (and again in a forked child)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[Any, str, dict[str, Any]]] | None = None
        self._pid = 0

    def put(self, layer: Any, group: str, message: dict[str, Any]) -> None:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._start()
            loop, queue = self._loop, self._queue
        assert loop is not None and queue is not None
        loop.call_soon_threadsafe(queue.put_nowait, (layer, group, message))

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        queue: asyncio.Queue[tuple[Any, str, dict[str, Any]]] = asyncio.Queue()
        threading.Thread(target=loop.run_until_complete, args=(self._drain(queue),),
                         name="loopgate-announce", daemon=True).start()
        self._loop, self._queue, self._pid = loop, queue, os.getpid()

    @staticmethod
    async def _drain(queue: asyncio.Queue[tuple[Any, str, dict[str, Any]]]) -> None:
        while True:
            layer, group, message = await queue.get()
            try:
                await layer.group_send(group, message)
            except Exception:  # noqa: BLE001 - see the module's docstring
                logger.warning("could not announce %s on %s", message.get("type"), group, exc_info=True)


_sender = _Sender()


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` without waiting; failures are logged."""
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # noqa: BLE001 - see the module's docstring
            logger.warning("could not announce %s on %s", message.get("type"), group, exc_info=True)
        return
    _sender.put(layer, group, message)
