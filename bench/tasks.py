"""A Celery no-op for the bench scripts: the round trip every other figure is measured against.

The worker the scripts start imports this module (``--include bench.tasks``).
The task pushes to a Redis list the caller is blocked on, so the round trip is
broker → worker → one Redis command → caller; no result backend is needed.
"""

from __future__ import annotations

import redis
from celery import shared_task
from django.conf import settings

_client: redis.Redis | None = None


@shared_task(ignore_result=True)
def noop(key: str) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    _client.rpush(key, b"1")
