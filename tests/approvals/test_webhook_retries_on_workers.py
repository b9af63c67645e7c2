"""Webhook retries through a real ``celery worker`` and Redis, not a patched ``retry``.

Each test has a redis-server of its own (the second kills a worker that holds a message:
the sweep that hands it on must not touch other runs' messages on the shared Redis) and a
local receiver running the README's verification recipe.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from kombu import Connection

from approvals import notifications, tasks
from tests.approvals.factories import make_approval
from tests.approvals.webhook_receiver import RecipeReceiver
from tests.services import PrivateRedis, Proc, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "s3cret"


@pytest.fixture
def broker() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.stop()


@pytest.fixture
def workers(request) -> Iterator[list[Proc]]:  # type: ignore[no-untyped-def]
    procs: list[Proc] = []
    yield procs
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for proc in procs:
        proc.kill()
        if failed:
            print(f"--- {proc.name} ---\n{proc.output()}")


def worker(name: str, broker: PrivateRedis, receiver: RecipeReceiver, **env: str) -> Proc:
    return start_worker(name, REDIS_URL=broker.url, LOOPGATE_WEBHOOK_URL=receiver.url,
                        LOOPGATE_WEBHOOK_SECRET=SECRET, **env)


def publish(broker: PrivateRedis) -> str:
    """Queue one webhook as ``queue_webhook`` does, on the test's own broker."""
    body = notifications.webhook_body("approval.created", make_approval())
    with Connection(broker.url) as connection:
        tasks.deliver_webhook.apply_async(args=["approval.created", body], connection=connection,
                                          queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    return body


def test_a_failing_webhook_is_retried_by_the_worker_with_backoff_until_delivered(broker, workers) -> None:  # type: ignore[no-untyped-def]
    receiver = RecipeReceiver(SECRET, failures=[503, 502])
    try:
        workers.append(worker("hooks", broker, receiver))
        body = publish(broker)
        wait_for(lambda: receiver.acted, timeout=90, what="the third attempt")
        assert [status for *_rest, status in receiver.attempts] == [503, 502, 200]
        assert {raw for _headers, raw, _status in receiver.attempts} == {body.encode()}
        assert len({headers["webhook-id"] for headers, _raw, _status in receiver.attempts}) == 1
        # The retries waited out their backoff (5 s, then 10 s, less up to 20 % jitter) in the worker.
        first_gap = receiver.arrivals[1] - receiver.arrivals[0]
        second_gap = receiver.arrivals[2] - receiver.arrivals[1]
        assert 3.9 <= first_gap < second_gap and second_gap >= 7.9, (first_gap, second_gap)
        # Acknowledged (acks_late) once delivered: nothing left in the queue or held unacknowledged.
        client = redis.Redis.from_url(broker.url)
        wait_for(lambda: client.hlen("unacked") == 0, timeout=10, what="the delivered task's ack")
        assert client.llen(settings.CELERY_TASK_DEFAULT_QUEUE) == 0
    finally:
        receiver.close()


def test_a_retry_held_by_a_worker_that_dies_is_delivered_by_another_once(broker, workers) -> None:  # type: ignore[no-untyped-def]
    receiver = RecipeReceiver(SECRET, failures=[503])
    visibility = "8"  # seconds; longer than the first retry's countdown (at most 5 s)
    try:
        first = worker("doomed", broker, receiver, LOOPGATE_BROKER_VISIBILITY_SECONDS=visibility)
        workers.append(first)
        publish(broker)
        client = redis.Redis.from_url(broker.url)
        wait_for(lambda: receiver.attempts, timeout=60, what="the first attempt")
        # The retry is a new message with a countdown; the worker takes it and holds it, unacknowledged.
        wait_for(lambda: client.hlen("unacked") == 1 and client.llen(settings.CELERY_TASK_DEFAULT_QUEUE) == 0,
                 timeout=10, what="the worker to hold the retry")
        first.kill()  # SIGKILL before the countdown ends: no warm shutdown hands the message back
        assert len(receiver.attempts) == 1
        assert client.hlen("unacked") == 1  # not lost: Redis still has it

        workers.append(worker("heir", broker, receiver, LOOPGATE_BROKER_VISIBILITY_SECONDS=visibility))
        wait_for(lambda: receiver.acted, timeout=60, what="the retry on the second worker")
        assert [status for *_rest, status in receiver.attempts] == [503, 200]
        first_headers, second_headers = (headers for headers, _raw, _status in receiver.attempts)
        assert first_headers["webhook-id"] == second_headers["webhook-id"]
        wait_for(lambda: client.hlen("unacked") == 0, timeout=10, what="the retry's ack")
        assert len(receiver.attempts) == 2 and len(receiver.acted) == 1
    finally:
        receiver.close()


def test_a_worker_stopped_mid_countdown_hands_its_retry_back_at_once(broker, workers) -> None:  # type: ignore[no-untyped-def]
    """A warm shutdown (SIGTERM: a deploy, a scale-down) returns the held retry to the queue;
    with the default hour-long visibility timeout, only that can bring it to the next worker."""
    receiver = RecipeReceiver(SECRET, failures=[503])
    try:
        first = worker("leaving", broker, receiver)
        workers.append(first)
        publish(broker)
        client = redis.Redis.from_url(broker.url)
        wait_for(lambda: receiver.attempts, timeout=60, what="the first attempt")
        wait_for(lambda: client.hlen("unacked") == 1, timeout=10, what="the worker to hold the retry")
        first.stop()
        assert first.popen.returncode is not None and len(receiver.attempts) == 1
        assert client.hlen("unacked") == 0 and client.llen(settings.CELERY_TASK_DEFAULT_QUEUE) == 1

        workers.append(worker("next", broker, receiver))
        wait_for(lambda: receiver.acted, timeout=30, what="the retry on the next worker")
        assert [status for *_rest, status in receiver.attempts] == [503, 200]
    finally:
        receiver.close()
