"""Request body size limit: too big a body is refused with 413 before anything reads it.

Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` answers 400, only once something
reads the body, and trusts ``Content-Length``; this refuses by the declared
length at once, and counts a body that declares none (chunked) as it reads it.
"""

from __future__ import annotations

import io
from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from orchestrator.params import bad_request_response

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    message = f"The request body is larger than the limit of {limit:,} bytes."
    if request.path.startswith("/api/"):
        # The API's error shape, as orchestrator.api.plumbing.exception_handler renders it.
        return JsonResponse(
            {"message": message, "code": "request_too_large", "extra": {"limit_bytes": limit}}, status=413
        )
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


def _bad_length(request: HttpRequest) -> HttpResponse:
    message = "The Content-Length header is not a whole number of 0 or more."
    if request.path.startswith("/api/"):
        return JsonResponse({"message": message, "code": "bad_request", "extra": {}}, status=400)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = int(getattr(settings, "LOOPGATE_MAX_REQUEST_BYTES", 1024 * 1024))
        declared = request.META.get("CONTENT_LENGTH")
        if declared not in (None, ""):
            try:
                length = int(declared)
            except (TypeError, ValueError):
                return _bad_length(request)
            if length < 0:
                return _bad_length(request)
            if length > limit:
                return _too_large(request, limit)
        elif request.method in _BODY_METHODS:
            # No declared length (a chunked body under ASGI): read at most one byte
            # past the limit, then hand the body on as if it had been read normally.
            body = request.read(limit + 1)
            if len(body) > limit:
                return _too_large(request, limit)
            request._body = body  # type: ignore[attr-defined]
            request._stream = io.BytesIO(body)  # type: ignore[attr-defined]
            request.META["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)


class NulRefusalMiddleware:
    """A NUL character anywhere in the path or the query string is a 400 naming where it is.

    Postgres refuses NUL in text, so a NUL that reached a query would be a 500;
    no page or API takes one. Each page's own parameters are then parsed by
    ``orchestrator.params``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return bad_request_response(request, "The path contains a NUL character.")
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                shown = name.replace("\x00", "\\0")
                return bad_request_response(request, f"The “{shown}” parameter contains a NUL character.")
        return self.get_response(request)
