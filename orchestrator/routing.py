"""WebSocket routes of every app, gathered for asgi.py."""

from __future__ import annotations

from approvals.routing import websocket_urlpatterns as approvals_ws
from traces.routing import websocket_urlpatterns as traces_ws

websocket_urlpatterns: list = [*approvals_ws, *traces_ws]
