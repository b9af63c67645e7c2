"""The Redis channel layer survives idle sockets (redis-py 8 times sockets out
after 5 s unless told otherwise, which would drop every idle WebSocket)."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def test_a_receive_idle_for_longer_than_five_seconds_still_gets_its_message() -> None:
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"

    async def scenario() -> dict:
        channel = await layer.new_channel()
        await layer.group_add("idle.test", channel)
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(6.5)  # idle past redis-py's default socket timeout
        assert not waiting.done(), waiting.exception() if waiting.done() else None
        await layer.group_send("idle.test", {"type": "idle.ping", "n": 1})
        message = await asyncio.wait_for(waiting, timeout=10)
        await layer.group_discard("idle.test", channel)
        return message

    assert async_to_sync(scenario)() == {"type": "idle.ping", "n": 1}
