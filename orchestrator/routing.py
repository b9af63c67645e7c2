"""WebSocket routes of every app, gathered for asgi.py; any other path is refused (closed with 4404)."""

from __future__ import annotations

from django.urls import re_path

from approvals.routing import websocket_urlpatterns as approvals_ws
from orchestrator.consumers import NotFoundConsumer
from traces.routing import websocket_urlpatterns as traces_ws

websocket_urlpatterns: list = [*approvals_ws, *traces_ws, re_path(r"", NotFoundConsumer.as_asgi())]
