"""Bounded requests and login throttling against a real daphne process, watching its memory.

The server is started as production starts it (``daphne orchestrator.asgi:application``);
requests go over raw sockets so that the test controls what is declared and
how fast the body comes. Its resident memory (``VmRSS``) is read from /proc.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.factories import make_user
from tests.services import Proc, free_port, service_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 1024 * 1024  # LOOPGATE_MAX_REQUEST_BYTES's default
READ_SECONDS = 3
LOCKOUT_SECONDS = 3
DAPHNE = str(Path(sys.executable).parent / "daphne")


@pytest.fixture
def server() -> Iterator[dict[str, Any]]:
    port = free_port()
    proc = Proc("daphne", [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "orchestrator.asgi:application"],
                service_env(LOOPGATE_REQUEST_READ_SECONDS=str(READ_SECONDS),
                            LOOPGATE_LOGIN_LOCKOUT_SECONDS=str(LOCKOUT_SECONDS)))
    try:
        wait_for(lambda: _up(port), timeout=60, what="daphne")
        yield {"port": port, "pid": proc.popen.pid, "proc": proc}
    except BaseException:
        print(proc.output())
        raise
    finally:
        proc.stop()


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/login/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _answer(sock: socket.socket, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def _send_all_you_can(sock: socket.socket, total: int, *, chunked: bool = False) -> int:
    """Send up to ``total`` bytes of body until the server hangs up; how many went out."""
    piece = b"x" * 65536
    sent = 0
    try:
        while sent < total:
            if chunked:
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                sock.sendall(piece)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def test_oversized_and_slow_requests_are_refused_without_the_server_growing(server: dict[str, Any]) -> None:
    port, pid = server["port"], server["pid"]
    for _ in range(5):  # warm up: imports, templates, the first connections
        httpx.get(f"http://127.0.0.1:{port}/login/", timeout=10)
    before = _rss_kb(pid)

    # 1. A declared 200 MB body is answered 413 at once, before a byte of it is sent.
    sock = _connect(port)
    sock.sendall(b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 200000000\r\n\r\n")
    started = time.monotonic()
    answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 2
    assert b"larger than the limit of 1,048,576 bytes" in answer
    sock.close()

    # 2. The same to the API, in its error shape, while the client keeps sending 400 MB: the server hangs up.
    sock = _connect(port)
    sock.sendall(b"POST /api/v1/executions/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 400000000\r\n\r\n")
    sent = _send_all_you_can(sock, 400_000_000)
    answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413") or answer == b"", answer[:200]
    assert sent < 400_000_000, "the server read the whole body"
    sock.close()

    # 3. A chunked body (no declared length) is counted as it arrives and cut at the limit.
    sock = _connect(port)
    sock.sendall(b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    sent = _send_all_you_can(sock, 100_000_000, chunked=True)
    answer = _answer(sock)
    assert sent < 100_000_000, "the server read the whole chunked body"
    assert answer.startswith(b"HTTP/1.1 413") or answer == b"", answer[:200]
    sock.close()

    # 4. A slow sender: 10 bytes a second of a declared 1,000 gets 408 after the read time.
    sock = _connect(port)
    sock.sendall(b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 1000\r\n\r\n")
    started = time.monotonic()
    sock.settimeout(0.05)
    answer = b""
    while time.monotonic() - started < READ_SECONDS + 5 and not answer:
        try:
            sock.sendall(b"a" * 10)
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            answer = sock.recv(65536)
        except socket.timeout:
            time.sleep(0.95)
        except ConnectionResetError:
            break
    answer += _answer(sock, timeout=2)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert READ_SECONDS - 0.5 <= time.monotonic() - started <= READ_SECONDS + 3
    sock.close()

    # 5. Slow headers are cut at the same time.
    sock = _connect(port)
    sock.sendall(b"GET /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    for _ in range(READ_SECONDS + 3):
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(1)
    answer = _answer(sock, timeout=2)
    assert answer.startswith(b"HTTP/1.1 408") or (answer == b"" and time.monotonic() - started < READ_SECONDS + 3)
    sock.close()

    # A body under the limit still reaches Django (no session: the API says 401 in its own shape).
    response = httpx.post(f"http://127.0.0.1:{port}/api/v1/executions/", json={"graph": "seed", "input": {}},
                          timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"

    after = _rss_kb(pid)
    assert after - before < 5 * 1024, f"the server grew by {(after - before) / 1024:.1f} MB"
    assert server["proc"].popen.poll() is None


def test_login_throttling_locks_and_unlocks_on_a_real_server(server: dict[str, Any]) -> None:
    make_user("olga", password="right-password")
    base = f"http://127.0.0.1:{server['port']}"

    def attempt(password: str) -> int:
        with httpx.Client(base_url=base, timeout=10) as client:
            page = client.get("/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            return client.post("/login/", data={"username": "olga", "password": password,
                                                "csrfmiddlewaretoken": token}).status_code

    assert [attempt(f"wrong-{i}") for i in range(5)] == [200, 200, 200, 200, 429]
    assert attempt("right-password") == 429
    time.sleep(LOCKOUT_SECONDS + 0.5)
    assert attempt("right-password") == 302
