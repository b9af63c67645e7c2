"""htmx helpers: one place for request detection, fragments and HX-* headers.

A page that answers htmx with a fragment and everyone else with the whole page must say so
(``Vary: HX-Request``), or the browser's cache keeps one answer for both: Back to a URL that
htmx pushed would show the bare fragment. ``is_htmx`` notes that the answer depends on the
headers; ``VaryOnHtmxMiddleware`` then adds the ``Vary`` to that response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

_VARIES = "_loopgate_varies_on_htmx"


def is_htmx(request: HttpRequest) -> bool:
    """An htmx request that wants a fragment. htmx restoring a page it has no snapshot of (Back
    after its history cache missed) also says ``HX-Request`` but puts the answer in place of the
    whole body: it gets the whole page."""
    setattr(request, _VARIES, True)  # whatever the answer, the response now depends on the headers
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


class VaryOnHtmxMiddleware:
    """``Vary: HX-Request, HX-History-Restore-Request`` on every response whose view asked ``is_htmx``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, _VARIES, False):
            patch_vary_headers(response, ("HX-Request", "HX-History-Restore-Request"))
        return response


def render_fragment(
    request: HttpRequest, page: str, fragment: str, ctx: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """The fragment for htmx requests, the whole page otherwise."""
    return render(request, fragment if is_htmx(request) else page, ctx, status=status)


def redirect(response: HttpResponse, url: str) -> HttpResponse:
    response["HX-Redirect"] = url
    return response
