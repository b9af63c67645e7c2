"""The SDK's ``x-api-key`` header, carrying a Loopgate API token."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request


class ApiKeyAuthentication(TokenAuthentication):
    """``x-api-key: <token>`` (what LangGraph's SDKs send); ``Authorization: Token`` is DRF's own class."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = request.META.get("HTTP_X_API_KEY", "").strip()
        if not key:
            return None
        return self.authenticate_credentials(key)

    def authenticate_header(self, request: Request) -> str:
        return "x-api-key"
