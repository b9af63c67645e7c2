"""Probes and the metrics scrape, answered before anything else runs.

Kubernetes probes and Prometheus reach a pod by its IP address, which is not in
``ALLOWED_HOSTS``: Django would answer them ``400 Bad Request`` (DisallowedHost).
So this middleware sits first and answers these three paths itself, without
reading the Host header, sessions or the login requirement. Nothing here
reveals data: ``/readyz`` names which dependency failed, ``/metrics`` carries
counts (and may require ``LOOPGATE_METRICS_TOKEN``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from ops import health

PATHS = ("/healthz", "/readyz", "/metrics")


class OpsEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info.rstrip("/")
        if path not in PATHS:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return JsonResponse({"message": "Use GET.", "code": "method_not_allowed", "extra": None}, status=405)
        if path == "/healthz":
            # Alive: this process answers. Nothing else is checked, so a database
            # outage never makes Kubernetes restart every web pod at once.
            return JsonResponse({"status": "ok"})
        if path == "/readyz":
            ok, checks = health.readiness()
            return HttpResponse(json.dumps({"status": "ok" if ok else "unavailable", "checks": checks}),
                                content_type="application/json", status=200 if ok else 503)
        return metrics_view(request)


def metrics_view(request: HttpRequest) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST

    from ops import metrics

    token = settings.LOOPGATE_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return HttpResponse("A bearer token is required (LOOPGATE_METRICS_TOKEN).\n", status=401,
                                content_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
