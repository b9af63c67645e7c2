"""WebSockets from foreign origins are refused by the real ASGI application (orchestrator.asgi).

A handshake carries the user's session cookie whichever page opens it, so the origin is all
that tells Loopgate's own pages from another site's. The rule is Django's CSRF rule for forms:
this server's own scheme and host, or one of ``CSRF_TRUSTED_ORIGINS``.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from orchestrator.asgi import application
from tests.factories import make_role_users

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 5


@pytest.fixture
def session_cookie() -> str:
    client = Client()
    client.force_login(make_role_users()["reviewer"])
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def connects(cookie: str, *, host: str, origin: str | None, path: str = "/ws/approvals/", **extra: str) -> bool:
    headers = [(b"host", host.encode()), (b"cookie", cookie.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    headers += [(name.encode(), value.encode()) for name, value in extra.items()]

    async def scenario() -> bool:
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _code = await socket.connect(timeout=TIMEOUT)
        await socket.disconnect()
        return connected

    return async_to_sync(scenario)()


def test_a_page_of_this_server_opens_the_socket(session_cookie: str) -> None:
    assert connects(session_cookie, host="127.0.0.1:8000", origin="http://127.0.0.1:8000")
    assert connects(session_cookie, host="127.0.0.1:8000", origin="http://127.0.0.1:8000", path="/ws/executions/")


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:9999", "https://127.0.0.1:8000", "null"])
def test_a_page_of_another_origin_is_refused(session_cookie: str, origin: str) -> None:
    assert not connects(session_cookie, host="127.0.0.1:8000", origin=origin)
    assert not connects(session_cookie, host="127.0.0.1:8000", origin=origin, path="/ws/executions/")


def test_a_handshake_without_an_origin_is_refused(session_cookie: str) -> None:
    assert not connects(session_cookie, host="127.0.0.1:8000", origin=None)


def test_allowing_every_host_does_not_allow_every_origin(session_cookie: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["*"]
    assert connects(session_cookie, host="loopgate.internal", origin="http://loopgate.internal")
    assert not connects(session_cookie, host="loopgate.internal", origin="http://evil.example")


def test_a_sibling_subdomain_is_another_origin(session_cookie: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = [".example.com"]
    assert connects(session_cookie, host="loopgate.example.com", origin="http://loopgate.example.com")
    assert not connects(session_cookie, host="loopgate.example.com", origin="http://blog.example.com")


def test_a_host_outside_allowed_hosts_is_refused_even_from_its_own_page(session_cookie: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["loopgate.example.com"]
    assert not connects(session_cookie, host="evil.example", origin="http://evil.example")


def test_behind_a_tls_proxy_the_https_origin_is_this_server(session_cookie: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["loopgate.example.com"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert connects(session_cookie, host="loopgate.example.com", origin="https://loopgate.example.com",
                    **{"x-forwarded-proto": "https"})
    assert not connects(session_cookie, host="loopgate.example.com", origin="http://loopgate.example.com",
                        **{"x-forwarded-proto": "https"})


def test_csrf_trusted_origins_may_open_it_too(session_cookie: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["loopgate.internal"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://loopgate.example.com", "https://*.ops.example.com"]
    for origin in ("https://loopgate.example.com", "https://dash.ops.example.com"):
        assert connects(session_cookie, host="loopgate.internal", origin=origin)
    for origin in ("http://loopgate.example.com", "https://evil.example.com"):
        assert not connects(session_cookie, host="loopgate.internal", origin=origin)
