from __future__ import annotations

from django.urls import path

from approvals import consumers

websocket_urlpatterns: list = [
    path("ws/approvals/", consumers.ApprovalsConsumer.as_asgi()),
]
