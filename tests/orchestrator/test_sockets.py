"""WebSockets follow the session and the user's rights, over the real Redis channel layer and the real
ASGI application (session cookie, origin check, auth middleware): closed at logout and when a role is
taken away; re-checked before pushes."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client

from orchestrator import roles, sockets
from orchestrator.models import Execution
from tests.factories import make_role_users
from tests.traces.builders import make_execution, make_steps
from traces import live

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 5


def _socket(client: Client, path: str) -> WebsocketCommunicator:
    from orchestrator.asgi import application

    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return WebsocketCommunicator(application, path, headers=[
        (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", cookie.encode())])


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def _closed_with(comm: WebsocketCommunicator) -> int | None:
    """The close code the server sent, skipping any data frames before it."""
    for _ in range(10):
        message = await comm.receive_output(timeout=TIMEOUT)
        if message["type"] == "websocket.close":
            return message.get("code")
    return None


def test_logging_out_closes_that_sessions_sockets_and_no_row_arrives_after() -> None:
    users = make_role_users()
    execution = make_execution(status=Execution.Status.RUNNING, finished_at=None)
    step = make_steps(execution, 1)[0]
    leaving, staying = _logged_in(users["operator"]), _logged_in(users["operator"])

    async def check() -> None:
        gone = _socket(leaving, f"/ws/executions/{execution.id}/")
        kept = _socket(staying, f"/ws/executions/{execution.id}/")
        inbox = _socket(leaving, "/ws/executions/")
        for comm in (gone, kept, inbox):
            connected, _ = await comm.connect(timeout=TIMEOUT)
            assert connected
        try:
            response = await sync_to_async(leaving.post)("/logout/")
            assert response.status_code == 302
            assert await _closed_with(gone) == sockets.CLOSE_LOGGED_OUT
            assert await _closed_with(inbox) == sockets.CLOSE_LOGGED_OUT
            # The same user's other session is untouched and still gets live rows.
            await sync_to_async(live.announce_step)(execution.id, step.id)
            assert f'id="step-{step.id}"' in await kept.receive_from(timeout=TIMEOUT)
        finally:
            for comm in (gone, kept, inbox):
                await comm.disconnect()

    async_to_sync(check)()


def test_taking_a_users_role_away_closes_their_sockets() -> None:
    users = make_role_users()
    execution = make_execution(status=Execution.Status.RUNNING, finished_at=None)
    client = _logged_in(users["reviewer"])

    async def check() -> None:
        trace = _socket(client, f"/ws/executions/{execution.id}/")
        approvals = _socket(client, "/ws/approvals/")
        for comm in (trace, approvals):
            connected, _ = await comm.connect(timeout=TIMEOUT)
            assert connected
        await approvals.receive_nothing(timeout=0.5)  # the first look's count, if any
        try:
            group = await sync_to_async(Group.objects.get)(name=roles.REVIEWERS)
            await sync_to_async(users["reviewer"].groups.remove)(group)
            assert await _closed_with(trace) == sockets.CLOSE_FORBIDDEN
            assert await _closed_with(approvals) == sockets.CLOSE_FORBIDDEN
        finally:
            for comm in (trace, approvals):
                await comm.disconnect()

    async_to_sync(check)()


def test_a_missed_message_is_caught_by_the_recheck_before_a_push() -> None:
    users = make_role_users()
    execution = make_execution(status=Execution.Status.RUNNING, finished_at=None)
    step = make_steps(execution, 1)[0]
    client = _logged_in(users["operator"])

    async def check() -> None:
        comm = _socket(client, f"/ws/executions/{execution.id}/")
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        try:
            # The session is deleted behind the socket's back (no logout message: an admin, an expiry).
            with mock.patch.object(sockets, "_send"):  # and the role change's message is lost too
                await sync_to_async(client.session.delete)()
            with mock.patch.object(sockets, "RECHECK_SECONDS", 0):
                await sync_to_async(live.announce_step)(execution.id, step.id)
                assert await _closed_with(comm) == sockets.CLOSE_LOGGED_OUT
        finally:
            await comm.disconnect()

    async_to_sync(check)()


def test_the_watchers_due_at_once_are_rechecked_together_and_each_gets_its_own_verdict() -> None:
    users = make_role_users()
    execution = make_execution(status=Execution.Status.RUNNING, finished_at=None)
    step = make_steps(execution, 1)[0]
    operators = [_logged_in(users["operator"]) for _ in range(3)]
    reviewer, leaving = _logged_in(users["reviewer"]), operators[2]

    async def check() -> None:
        comms = [_socket(client, f"/ws/executions/{execution.id}/") for client in [*operators, reviewer]]
        for comm in comms:
            connected, _ = await comm.connect(timeout=TIMEOUT)
            assert connected
        try:
            with mock.patch.object(sockets, "_send"):  # the logout's and the role change's messages are lost
                await sync_to_async(leaving.session.delete)()
                group = await sync_to_async(Group.objects.get)(name=roles.REVIEWERS)
                await sync_to_async(users["reviewer"].groups.remove)(group)
            spy = mock.patch.object(sockets, "check_sockets", wraps=sockets.check_sockets)
            with mock.patch.object(sockets, "RECHECK_SECONDS", 0), spy as checked:
                await sync_to_async(live.announce_step)(execution.id, step.id)
                for comm in comms[:2]:  # the operators still signed in get the row
                    assert f'id="step-{step.id}"' in await comm.receive_from(timeout=TIMEOUT)
                assert await _closed_with(comms[2]) == sockets.CLOSE_LOGGED_OUT
                assert await _closed_with(comms[3]) == sockets.CLOSE_FORBIDDEN
            # One thread hop for the four sockets, not one each.
            assert checked.call_count == 1 and len(checked.call_args.args[0]) == 4
        finally:
            for comm in comms:
                await comm.disconnect()

    async_to_sync(check)()
