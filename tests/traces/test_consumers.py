"""The live trace consumers over the real Redis channel layer, with WebsocketCommunicator."""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from orchestrator.models import Execution
from tests.traces.builders import HOSTILE, make_execution, make_steps
from tests.factories import fixture_status
from traces import live
from traces.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 5


def communicator(path: str, user: Any) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    comm.scope["user"] = user
    return comm


class ExecutionConsumerTests:
    def test_an_outsider_and_an_anonymous_visitor_are_refused(self, users) -> None:  # type: ignore[no-untyped-def]
        execution = make_execution(status=Execution.Status.RUNNING)

        async def check() -> None:
            for user in (users["outsider"], AnonymousUser()):
                comm = communicator(f"/ws/executions/{execution.id}/", user)
                connected, _ = await comm.connect(timeout=TIMEOUT)
                assert not connected
                await comm.disconnect()

        async_to_sync(check)()

    def test_a_reader_gets_each_new_step_rendered_and_the_header_when_the_status_changes(self, users) -> None:  # type: ignore[no-untyped-def]
        execution = make_execution(status=Execution.Status.RUNNING, finished_at=None)
        first, second = make_steps(execution, 2)

        async def check() -> None:
            comm = communicator(f"/ws/executions/{execution.id}/", users["reviewer"])
            connected, _ = await comm.connect(timeout=TIMEOUT)
            assert connected
            try:
                await sync_to_async(live.announce_step)(execution.id, second.id)
                html = await comm.receive_from(timeout=TIMEOUT)
                assert '<div hx-swap-oob="beforeend:#timeline-rows">' in html
                assert f'id="step-{second.id}"' in html and 'data-live="1"' in html
                assert f'id="step-{first.id}"' not in html
                for region in ("execution-header", "timeline-now", "graph-diagram"):
                    assert re.search(rf'id="{region}"[^>]*hx-swap-oob="true"', html), region

                await sync_to_async(fixture_status)(execution.id, "succeeded")
                await sync_to_async(live.announce_execution)(execution.id, "succeeded")
                html = await comm.receive_from(timeout=TIMEOUT)
                assert re.search(r'id="execution-header"[^>]*hx-swap-oob="true"', html)
                assert "badge-succeeded" in html
                # The run ended on screen: its final state appears without a reload.
                assert re.search(r'id="final-state"[^>]*hx-swap-oob="true"', html)
                assert "Final state</summary>" in html
                assert 'beforeend:#timeline-rows' not in html
                # Another execution's news does not reach this socket.
                other = await sync_to_async(make_execution)()
                await sync_to_async(live.announce_execution)(other.id, "succeeded")
                assert await comm.receive_nothing(timeout=0.5)
            finally:
                await comm.disconnect()

        async_to_sync(check)()

    def test_pushed_fragments_carry_hostile_text_escaped(self, users) -> None:  # type: ignore[no-untyped-def]
        execution = make_execution(status=Execution.Status.RUNNING, finished_at=None)
        step = make_steps(execution, 1)[0]
        step.nodes = [HOSTILE]
        step.save()

        async def check() -> None:
            comm = communicator(f"/ws/executions/{execution.id}/", users["operator"])
            assert (await comm.connect(timeout=TIMEOUT))[0]
            try:
                await sync_to_async(live.announce_step)(execution.id, step.id)
                html = await comm.receive_from(timeout=TIMEOUT)
                assert "<script>window.__x" not in html
                assert "&lt;script&gt;window.__x=1&lt;/script&gt;" in html
            finally:
                await comm.disconnect()

        async_to_sync(check)()


async def pushed_header(user: Any, execution: Execution, *, step_id: int | None = None) -> str:
    """What ``user``'s socket gets when the execution's status changes (or, given ``step_id``, a step)."""
    comm = communicator(f"/ws/executions/{execution.id}/", user)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    try:
        if step_id is None:
            await sync_to_async(live.announce_execution)(execution.id, execution.status)
        else:
            await sync_to_async(live.announce_step)(execution.id, step_id)
        html = await comm.receive_from(timeout=TIMEOUT)
    finally:
        await comm.disconnect()
    match = re.search(r'<section id="execution-header".*?</section>', html, re.S)
    assert match, html
    return match.group(0)


class PushedHeaderRoleTests:
    def test_an_admin_watching_an_execution_go_over_budget_gets_the_raise_budget_form(self, users) -> None:  # type: ignore[no-untyped-def]
        execution = make_execution(status=Execution.Status.BUDGET_EXCEEDED, tokens_used=21_000, token_budget=20_000)
        form = f'id="raise-budget-{execution.id}"'
        raise_url = reverse("execution_budget_raise", args=[execution.id])

        async def check() -> None:
            admin = await pushed_header(users["admin"], execution)
            assert form in admin and f'hx-post="{raise_url}"' in admin
            for role in ("operator", "reviewer"):
                assert form not in await pushed_header(users[role], execution), role

        async_to_sync(check)()

    def test_an_operator_keeps_cancel_in_every_pushed_header_of_a_running_execution(self, users) -> None:  # type: ignore[no-untyped-def]
        execution = make_execution(status=Execution.Status.RUNNING, finished_at=None)
        step = make_steps(execution, 1)[0]
        cancel = f'action="{reverse("traces:cancel", args=[execution.id])}"'

        async def check() -> None:
            for user in (users["operator"], users["admin"]):
                assert cancel in await pushed_header(user, execution)
                assert cancel in await pushed_header(user, execution, step_id=step.id)
            assert cancel not in await pushed_header(users["reviewer"], execution)

        async_to_sync(check)()


class ExecutionListConsumerTests:
    def test_rows_are_pushed_as_executions_progress_and_end(self, users) -> None:  # type: ignore[no-untyped-def]
        execution = make_execution(status=Execution.Status.RUNNING, finished_at=None, step_count=3)

        async def check() -> None:
            comm = communicator("/ws/executions/", users["operator"])
            assert (await comm.connect(timeout=TIMEOUT))[0]
            try:
                await sync_to_async(live.announce_step)(execution.id, 1)
                html = await comm.receive_from(timeout=TIMEOUT)
                assert html.lstrip().startswith(f'<tr id="execution-{execution.id}" hx-swap-oob="true"')
                assert "badge-running" in html
                await sync_to_async(fixture_status)(execution.id, "failed")
                await sync_to_async(live.announce_execution)(execution.id, "failed")
                assert "badge-failed" in await comm.receive_from(timeout=TIMEOUT)
            finally:
                await comm.disconnect()

        async_to_sync(check)()

    def test_the_lists_sockets_of_a_process_share_one_relay_and_one_render_of_a_row(self, users) -> None:  # type: ignore[no-untyped-def]
        from traces import consumers, fragments

        execution = make_execution(status=Execution.Status.RUNNING, finished_at=None, step_count=3)

        async def check() -> None:
            comms = [communicator("/ws/executions/", users[role]) for role in ("operator", "reviewer", "admin")]
            for comm in comms:
                assert (await comm.connect(timeout=TIMEOUT))[0]
            try:
                relays = [r for (_loop, group), r in consumers._Relay._all.items() if group == live.EXECUTIONS_GROUP]
                assert len(relays) == 1 and len(relays[0].sockets) == 3
                with mock.patch.object(fragments, "render_list_row", wraps=fragments.render_list_row) as render:
                    await sync_to_async(live.announce_step)(execution.id, 1)
                    for comm in comms:
                        assert f'<tr id="execution-{execution.id}"' in await comm.receive_from(timeout=TIMEOUT)
                assert render.call_count == 1
            finally:
                for comm in comms:
                    await comm.disconnect()
            assert not [g for (_loop, g) in consumers._Relay._all if g == live.EXECUTIONS_GROUP]

        async_to_sync(check)()

    def test_users_without_a_role_are_refused(self, users) -> None:  # type: ignore[no-untyped-def]
        async def check() -> None:
            for user in (users["outsider"], AnonymousUser()):
                comm = communicator("/ws/executions/", user)
                assert not (await comm.connect(timeout=TIMEOUT))[0]
                await comm.disconnect()

        async_to_sync(check)()
