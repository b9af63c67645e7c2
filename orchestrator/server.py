"""Bounded requests at the server: daphne refuses too big a body and a slow sender before Django is called.

Daphne (on Twisted) reads a whole request body, spooled to a temporary file,
before it calls the application, and then puts every chunk of it on the
application's queue at once: an ASGI middleware or Django's own limit sees a
400 MB body only when it is already in the server's memory, and a client that
declares ``Content-Length: 200000000`` and sends nothing holds its connection
without an answer. So the limits are kept by daphne's request object itself:

1. a declared ``Content-Length`` over ``LOOPGATE_MAX_REQUEST_BYTES`` is answered
   413 as soon as the headers are in, and the connection closed, unread;
2. a body without a declared length (chunked) is counted as it arrives and
   refused the same way at the first byte past the limit;
3. a request whose headers and body have not all arrived within
   ``LOOPGATE_REQUEST_READ_SECONDS`` of its first line is answered 408 and closed
   (Twisted's own idle timeout, 60 s without a byte, still applies too).

``install()`` makes daphne build these requests. ``orchestrator/asgi.py`` calls it,
so ``daphne orchestrator.asgi:application`` (and ``manage.py serve``, which runs
daphne's command line) is bounded with no other change: daphne imports the
application before it starts listening.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from daphne.http_protocol import HTTPFactory, WebRequest

logger = logging.getLogger(__name__)

_REASONS = {408: b"Request Timeout", 413: b"Content Too Large"}


def _limits() -> tuple[int, float]:
    from django.conf import settings

    return int(settings.LOOPGATE_MAX_REQUEST_BYTES), float(settings.LOOPGATE_REQUEST_READ_SECONDS)


class BoundedWebRequest(WebRequest):
    """Daphne's request, refusing a body over the limit and a request that takes too long to arrive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.max_bytes, read_seconds = _limits()
        self.received_bytes = 0
        self.refused = False
        super().__init__(*args, **kwargs)
        from twisted.internet import reactor  # daphne has installed its asyncio reactor by now

        self.read_deadline: Any = reactor.callLater(read_seconds, self._read_too_slow)

    # -- Twisted's callbacks, in the order a request arrives ----------------------------------------------

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_bytes:
            self.content = io.BytesIO()
            self._refuse(413, f"The request body is larger than the limit of {self.max_bytes:,} bytes.",
                         code="request_too_large", extra={"limit_bytes": self.max_bytes})
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self.received_bytes += len(data)
        if self.received_bytes > self.max_bytes:
            self._refuse(413, f"The request body is larger than the limit of {self.max_bytes:,} bytes.",
                         code="request_too_large", extra={"limit_bytes": self.max_bytes})
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._cancel_deadline()
        if self.refused:
            return
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:
        self._cancel_deadline()
        super().connectionLost(reason)

    # -- refusing ------------------------------------------------------------------------------------------

    def _read_too_slow(self) -> None:
        self.read_deadline = None
        if not self.refused and self.channel is not None:
            seconds = _limits()[1]
            self._refuse(408, f"The request did not arrive within {seconds:g} seconds.", code="request_timeout",
                         extra={"limit_seconds": seconds})

    def _cancel_deadline(self) -> None:
        if self.read_deadline is not None and self.read_deadline.active():
            self.read_deadline.cancel()
        self.read_deadline = None

    def _refuse(self, status: int, message: str, *, code: str, extra: dict[str, Any]) -> None:
        """Answer at once, straight on the transport (no request line may be parsed yet), and hang up.

        Closing the connection stops Twisted reading from it: the rest of the body is never read.
        """
        self.refused = True
        self._cancel_deadline()
        channel = self.channel
        if channel is None or channel.transport is None:
            return
        path = bytes(getattr(channel, "_path", b"") or b"")
        if path.startswith(b"/api/"):
            body = json.dumps({"message": message, "code": code, "extra": extra}).encode()
            content_type = b"application/json"
        else:
            body = message.encode()
            content_type = b"text/plain; charset=utf-8"
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
            status, _REASONS[status], content_type, len(body))
        logger.warning("Refused a request from %s: %s", self.client_addr, message)
        channel.transport.write(head + body)
        channel.transport.loseConnection()


class BoundedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedWebRequest
        return protocol


def install() -> None:
    """Make daphne's server build bounded requests (it looks its factory class up when it starts)."""
    import daphne.server

    daphne.server.HTTPFactory = BoundedHTTPFactory  # type: ignore[misc]
