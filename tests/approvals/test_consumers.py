"""The live approvals socket, through Channels' WebsocketCommunicator on the real (Redis) channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from approvals import live, services
from approvals.routing import websocket_urlpatterns
from tests.approvals.factories import make_approval

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 5


def communicator(user, query: str = "") -> WebsocketCommunicator:  # type: ignore[no-untyped-def]
    app = URLRouter(websocket_urlpatterns)
    socket = WebsocketCommunicator(app, "/ws/approvals/" + (f"?{query}" if query else ""))
    socket.scope["user"] = user
    return socket


@pytest.fixture(autouse=True)
def no_side_tasks(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("orchestrator.tasks.advance.delay", lambda *a: None)
    monkeypatch.setattr("approvals.tasks.notify_created.delay", lambda *a: None)


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_only_users_with_a_role_may_connect(users, who) -> None:  # type: ignore[no-untyped-def]
    user = AnonymousUser() if who == "anonymous" else users[who]

    async def scenario() -> None:
        socket = communicator(user)
        connected, code = await socket.connect(timeout=TIMEOUT)
        assert not connected
        assert code == 4403
        await socket.disconnect()

    async_to_sync(scenario)()


def test_the_nav_count_follows_approvals_created_and_decided_elsewhere(users) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        socket = communicator(users["operator"])
        connected, _ = await socket.connect(timeout=TIMEOUT)
        assert connected
        try:
            first = await socket.receive_from(timeout=TIMEOUT)
            assert 'hx-swap-oob="innerHTML:#nav-approvals-count"></span>' in first

            approval = await database_sync_to_async(make_approval)()
            await database_sync_to_async(live.announce_approvals_changed)()
            update = await socket.receive_from(timeout=TIMEOUT)
            assert '<span hx-swap-oob="innerHTML:#nav-approvals-count">1</span>' in update
            assert 'hx-swap-oob="innerHTML:#live-announcer">New approval: send_email (t_mail)</div>' in update
            assert await socket.receive_nothing(timeout=0.3)  # no rows: this page did not ask for them

            await database_sync_to_async(services.approval_decide)(
                approval_id=approval.id, user=users["reviewer"], decisions=[{"type": "approve"}])
            await database_sync_to_async(live.announce_approvals_changed)()
            update = await socket.receive_from(timeout=TIMEOUT)
            assert '<span hx-swap-oob="innerHTML:#nav-approvals-count"></span>' in update
            assert "live-announcer" not in update
        finally:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_the_inbox_gets_new_rows_and_rows_that_left_with_who_decided(users) -> None:  # type: ignore[no-untyped-def]
    waiting = make_approval(value="already here?")

    async def scenario() -> None:
        socket = communicator(users["reviewer"], "rows=1")
        connected, _ = await socket.connect(timeout=TIMEOUT)
        assert connected
        try:
            assert "nav-approvals-count\">1<" in await socket.receive_from(timeout=TIMEOUT)
            # On (re)connect the rows are sent whole: whatever changed since the page rendered shows.
            synced = await socket.receive_from(timeout=TIMEOUT)
            assert synced.startswith('<tbody hx-swap-oob="innerHTML:#approval-rows">')
            assert f'<tr id="approval-{waiting.id}"' in synced and "is-synced" in synced
            approval = await database_sync_to_async(make_approval)(value={"action": "shutdown_cluster",
                                                                         "cluster": "<b>dev-2</b>"})
            await database_sync_to_async(live.announce_approvals_changed)()
            count = await socket.receive_from(timeout=TIMEOUT)
            assert "nav-approvals-count\">2<" in count
            rows = await socket.receive_from(timeout=TIMEOUT)
            assert rows.startswith('<tbody hx-swap-oob="afterbegin:#approval-rows">')
            assert f'<tr id="approval-{approval.id}"' in rows
            assert f'value="{approval.id}"' in rows  # a reviewer's row has its checkbox
            assert "cluster: &lt;b&gt;dev-2&lt;/b&gt;" in rows
            assert f'id="approval-{waiting.id}"' not in rows

            await database_sync_to_async(services.approval_decide)(
                approval_id=waiting.id, user=users["admin"], decisions=[{"type": "reject"}])
            await database_sync_to_async(live.announce_approvals_changed)()
            assert "nav-approvals-count\">1<" in await socket.receive_from(timeout=TIMEOUT)
            left = await socket.receive_from(timeout=TIMEOUT)
            assert left.startswith(f'<tr id="approval-{waiting.id}" hx-swap-oob="outerHTML"')
            assert "rejected" in left and "by alice" in left
        finally:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_a_socket_stays_quiet_when_nothing_it_shows_changed(users) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        socket = communicator(users["reviewer"], "rows=1&graph=finops")
        connected, _ = await socket.connect(timeout=TIMEOUT)
        assert connected
        try:
            await socket.receive_from(timeout=TIMEOUT)  # the count
            assert "No approvals match these filters." in await socket.receive_from(timeout=TIMEOUT)
            await database_sync_to_async(make_approval)()  # graph t_mail: not this inbox's filter
            await database_sync_to_async(live.announce_approvals_changed)()
            update = await socket.receive_from(timeout=TIMEOUT)
            assert "nav-approvals-count\">1<" in update  # the count is for every graph
            assert await socket.receive_nothing(timeout=0.3)
        finally:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_messages_on_the_channel_layer_carry_no_html(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sent = []
    # What goes to the channel layer (orchestrator/announce.py sends it from its own loop).
    monkeypatch.setattr(live.announce, "group_send", lambda group, message: sent.append((group, message)))
    live.announce_approvals_changed()
    assert sent == [("approvals.inbox", {"type": "approvals.changed"})]


def test_a_claim_elsewhere_updates_the_row_so_others_see_who_is_on_it(users) -> None:  # type: ignore[no-untyped-def]
    approval = make_approval()

    async def scenario() -> None:
        socket = communicator(users["admin"], "rows=1")
        connected, _ = await socket.connect(timeout=TIMEOUT)
        assert connected
        try:
            await socket.receive_from(timeout=TIMEOUT)  # the count
            await socket.receive_from(timeout=TIMEOUT)  # the rows
            await database_sync_to_async(services.approval_claim)(approval_id=approval.id, user=users["reviewer"])
            await database_sync_to_async(live.announce_approvals_changed)()
            row = await socket.receive_from(timeout=TIMEOUT)
            assert row.startswith(f'<tr id="approval-{approval.id}" hx-swap-oob="outerHTML"')
            assert '<span class="claimed">rita</span>' in row
        finally:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_an_approval_that_arrived_after_the_page_rendered_but_before_the_socket_opened_is_announced(users) -> None:  # type: ignore[no-untyped-def]
    import time

    rendered_at = time.time()
    time.sleep(0.01)
    make_approval()  # arrives in the gap between the page's render and the socket's connect

    async def scenario() -> None:
        socket = communicator(users["reviewer"], f"since={rendered_at:.3f}")
        connected, _ = await socket.connect(timeout=TIMEOUT)
        assert connected
        try:
            first = await socket.receive_from(timeout=TIMEOUT)
            assert 'hx-swap-oob="innerHTML:#live-announcer">New approval:' in first
        finally:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_an_open_approval_page_shows_at_once_that_someone_else_decided_it(users) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: the page did not change when another reviewer decided the approval it shows."""
    watched = make_approval(value="ok to ship?")

    async def scenario() -> None:
        socket = communicator(users["reviewer"], f"approval={watched.id}")
        connected, _ = await socket.connect(timeout=TIMEOUT)
        assert connected
        try:
            first = await socket.receive_from(timeout=TIMEOUT)
            assert "nav-approvals-count" in first and 'id="decision"' not in first  # as rendered: nothing new
            await database_sync_to_async(services.approval_decide)(
                approval_id=watched.id, user=users["admin"], decisions=[{"type": "reject", "message": "no"}])
            await database_sync_to_async(live.announce_approvals_changed)()
            messages = [await socket.receive_from(timeout=TIMEOUT) for _ in range(2)]
            decision = next(m for m in messages if 'id="decision"' in m)
            assert 'hx-swap-oob="outerHTML"' in decision
            assert "Alice decided first" in decision and "rejected" in decision
            # Another approval's news leaves this page's decision alone.
            other = await database_sync_to_async(make_approval)()
            await database_sync_to_async(live.announce_approvals_changed)()
            update = await socket.receive_from(timeout=TIMEOUT)
            assert 'id="decision"' not in update
            assert other is not None
        finally:
            await socket.disconnect()

    async_to_sync(scenario)()
