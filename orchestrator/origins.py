"""Which pages may open a WebSocket: the origins Django's CSRF check accepts for a form POST.

A WebSocket handshake carries the browser's cookies but is not covered by CSRF, so a page of any
other site could open one with the user's session and read the live rows (cross-site WebSocket
hijacking). Channels' ``AllowedHostsOriginValidator`` accepts any origin whose host is in
``ALLOWED_HOSTS``: with ``ALLOWED_HOSTS=*`` (common behind a proxy) every origin, with
``.example.com`` every sibling subdomain. This validator applies Django's own rule for forms
instead (``CsrfViewMiddleware._origin_verified``): the ``Origin`` is this server's scheme and host,
or one of ``CSRF_TRUSTED_ORIGINS``; the ``Host`` itself must be allowed. A handshake without an
``Origin`` (browsers always send one) is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

Scope = dict[str, Any]


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers") or []:
        if key.lower() == wanted:
            return value.decode("latin-1").strip()
    return None


def _host(scope: Scope) -> str:
    if settings.USE_X_FORWARDED_HOST and _header(scope, "x-forwarded-host"):
        return (_header(scope, "x-forwarded-host") or "").split(",")[0].strip().lower()
    return (_header(scope, "host") or "").lower()


def _is_secure(scope: Scope) -> bool:
    """As ``request.is_secure()``: the connection's scheme, or the TLS proxy's header when trusted."""
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, secure_value = proxy
        value = _header(scope, header.removeprefix("HTTP_").replace("_", "-").lower())
        if value is not None:
            return value.split(",")[0].strip() == secure_value
    return scope.get("scheme") in ("wss", "https")


def origin_allowed(scope: Scope) -> bool:
    origin = (_header(scope, "origin") or "").lower()
    host = _host(scope)
    if not origin or origin == "null" or not host:
        return False
    domain, _port = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]  # as HttpRequest.get_host()
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    if origin == f"{'https' if _is_secure(scope) else 'http'}://{host}":
        return True
    trusted = [entry.lower() for entry in settings.CSRF_TRUSTED_ORIGINS]
    if origin in trusted:
        return True
    parsed = urlsplit(origin)
    for entry in trusted:
        if "*" in entry:
            pattern = urlsplit(entry)
            if pattern.scheme == parsed.scheme and is_same_domain(parsed.netloc, pattern.netloc.lstrip("*")):
                return True
    return False


class SameOriginValidator:
    """ASGI middleware: a WebSocket from an origin ``origin_allowed`` refuses is denied (HTTP 403)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
