"""htmx helpers: one place for request detection, fragments and HX-* headers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def render_fragment(
    request: HttpRequest, page: str, fragment: str, ctx: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """The fragment for htmx requests, the whole page otherwise."""
    return render(request, fragment if is_htmx(request) else page, ctx, status=status)


def redirect(response: HttpResponse, url: str) -> HttpResponse:
    response["HX-Redirect"] = url
    return response
