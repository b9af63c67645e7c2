from __future__ import annotations

from django.urls import path

from traces import consumers

websocket_urlpatterns: list = [
    path("ws/executions/", consumers.ExecutionListConsumer.as_asgi()),
    path("ws/executions/<uuid:execution_id>/", consumers.ExecutionConsumer.as_asgi()),
]
