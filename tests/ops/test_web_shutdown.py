"""The web process on SIGTERM (a rollout): open WebSockets are closed at once, so browsers reconnect to
another pod, and the process exits promptly and cleanly. Real daphne, real Redis channel layer."""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.factories import make_role_users
from tests.services import Proc, free_port, service_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_sigterm_closes_open_websockets_and_daphne_exits_promptly() -> None:
    users = make_role_users()
    client = Client()
    client.force_login(users["operator"])
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    port = free_port()
    daphne = Proc("daphne", [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                             "orchestrator.asgi:application"], service_env())
    try:
        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for(up, timeout=30, what="daphne")
        origin = {"Origin": f"http://127.0.0.1:{port}", "Cookie": cookie}
        stack = contextlib.ExitStack()
        sockets = [stack.enter_context(connect(f"ws://127.0.0.1:{port}{path}", additional_headers=origin,
                                               open_timeout=10))
                   for path in ("/ws/executions/", "/ws/approvals/")]
        for ws in sockets:
            try:
                ws.recv(timeout=0.5)  # the approvals socket says the count at once; the other has nothing yet
            except TimeoutError:
                pass
            assert ws.ping().wait(timeout=5), "the socket is open and answers"
        sent = time.monotonic()
        daphne.popen.send_signal(signal.SIGTERM)
        for ws in sockets:
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
        closed_after = time.monotonic() - sent
        daphne.popen.wait(timeout=20)
        exited_after = time.monotonic() - sent
        stack.close()
    finally:
        daphne.kill()
    assert closed_after < 5, closed_after
    assert exited_after < 10, exited_after
    assert daphne.popen.returncode == 0, daphne.output()
