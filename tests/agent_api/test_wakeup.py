"""runs.wait's wake-ups (agent_api/wakeup.py) over the real Redis: a status change published by
another process wakes this process's waiters of that run, and only those."""

from __future__ import annotations

import time
import uuid

import redis
from django.conf import settings

from agent_api import wakeup


def _published_until_set(event, execution_id: str, *, within: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    """Publish as a worker's process would (its own Redis client) until the event is set; the
    subscription starts in the background, so a first message may come before it listens."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        client.publish(wakeup._channel(), execution_id)
        if event.wait(0.1):
            return True
    return False


def test_a_status_change_published_elsewhere_wakes_the_waiters_of_that_run_only() -> None:
    watched, other = str(uuid.uuid4()), str(uuid.uuid4())
    with wakeup.watching(watched) as changed, wakeup.watching(other) as not_mine:
        assert _published_until_set(changed, watched)
        assert not not_mine.is_set()
    assert watched not in wakeup._waiters and other not in wakeup._waiters  # nothing left behind


def test_a_status_change_in_this_process_wakes_at_once_without_redis() -> None:
    execution_id = uuid.uuid4()
    with wakeup.watching(execution_id) as changed:
        wakeup._wake(str(execution_id))  # what notify() does first, before publishing
        assert changed.is_set()
