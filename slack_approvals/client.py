"""Loopgate's only door to Slack's Web API (``slack_sdk``'s ``WebClient``), called from Celery tasks only.

Failures come out as :class:`SlackError`: ``transient`` ones (rate limited, Slack's 5xx, the
network) are retried by the task with backoff; the others (a bad token, a channel the bot is
not in) are logged and given up, since asking again would get the same answer.
"""

from __future__ import annotations

import http.client
import urllib.error
from typing import Any

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

TIMEOUT_SECONDS = 10
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "request_timeout", "service_unavailable"}


class SlackError(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class TransientSlackError(SlackError):
    """Retried by the tasks (``autoretry_for``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


def enabled() -> bool:
    return bool(settings.LOOPGATE_SLACK_BOT_TOKEN and settings.LOOPGATE_SLACK_SIGNING_SECRET)


def web_client() -> WebClient:
    kwargs: dict[str, Any] = {"token": settings.LOOPGATE_SLACK_BOT_TOKEN, "timeout": TIMEOUT_SECONDS}
    if settings.LOOPGATE_SLACK_API_URL:
        kwargs["base_url"] = settings.LOOPGATE_SLACK_API_URL.rstrip("/") + "/"
    return WebClient(**kwargs)


def call(method: str, **kwargs: Any) -> dict[str, Any]:
    """``WebClient.api_call`` by the method's SDK name (``chat_postMessage``); Slack's answer as a dict."""
    try:
        response = getattr(web_client(), method)(**kwargs)
    except SlackApiError as exc:
        status = exc.response.status_code
        error = str(exc.response.get("error") or "") if isinstance(exc.response.data, dict) else ""
        message = f"Slack's {method} answered {status} {error or exc.response.data!r}"
        if status == 429 or status >= 500 or error in TRANSIENT_ERRORS:
            raise TransientSlackError(message) from None
        raise SlackError(message, transient=False) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise TransientSlackError(f"Slack's {method} unreachable: {exc}") from None
    return dict(response.data) if isinstance(response.data, dict) else {}
