"""``runs.wait`` and ``runs.join`` wake when their run's execution changes status, instead of polling.

A worker tells of every status change (the status listener, agent_api/apps.py):
waiters in the same process wake at once (the embedded mode), and with Redis the
execution's id is published on one pub/sub channel, which one subscriber thread
per web process turns into a wake-up of that execution's waiters. A waiter still
re-reads the database at least every ``WAIT_POLL_SECONDS``, so a lost message
(Redis restarted, a subscriber reconnecting) costs at most that much, never a
run; the database stays the truth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_waiters: dict[str, set[threading.Event]] = {}
_publisher: Any = None
_subscriber: threading.Thread | None = None


def _channel() -> str:
    """Under the channel layer's prefix: deployments (and test runs) sharing a Redis stay apart."""
    layer = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
    return f"{layer.get('prefix') or 'loopgate'}:run-status"


def _redis(**options: Any) -> Any:
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, **options)


def notify(execution_id: Any) -> None:
    """An execution's status changed (called after commit): wake whoever waits on it, here and elsewhere."""
    global _publisher
    key = str(execution_id)
    _wake(key)
    if not settings.REDIS_URL:
        return
    try:
        if _publisher is None:
            _publisher = _redis(socket_timeout=2, socket_connect_timeout=2)
        _publisher.publish(_channel(), key)
    except Exception:  # noqa: BLE001 - waiters poll as well: a lost wake-up costs a poll interval
        logger.warning("could not publish the status change of %s", key, exc_info=True)
        _publisher = None


def _wake(key: str) -> None:
    with _lock:
        events = list(_waiters.get(key, ()))
    for event in events:
        event.set()


@contextmanager
def watching(execution_id: Any) -> Iterator[threading.Event]:
    """An event set whenever the execution's status changes while the block runs (clear it after each look)."""
    key = str(execution_id)
    event = threading.Event()
    _ensure_subscriber()
    with _lock:
        _waiters.setdefault(key, set()).add(event)
    try:
        yield event
    finally:
        with _lock:
            waiting = _waiters.get(key)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del _waiters[key]


def _ensure_subscriber() -> None:
    global _subscriber
    if not settings.REDIS_URL:
        return
    with _lock:
        if _subscriber is not None and _subscriber.is_alive():
            return
        _subscriber = threading.Thread(target=_listen, name="loopgate-run-status", daemon=True)
        _subscriber.start()


def _listen() -> None:
    """Subscribe and wake waiters; reconnect after a failure (waiters poll meanwhile)."""
    while True:
        try:
            pubsub = _redis(socket_timeout=None, health_check_interval=30).pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(_channel())
            for message in pubsub.listen():
                data = message.get("data")
                if isinstance(data, bytes):
                    _wake(data.decode())
        except Exception:  # noqa: BLE001 - see the module's docstring
            logger.warning("run status subscription lost; reconnecting", exc_info=True)
            time.sleep(1.0)
