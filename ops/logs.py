"""Structured logs: one JSON object per line (``LOG_FORMAT=json``, the image's default).

Each line has ``ts``, ``level``, ``logger``, ``message``, the context of the work
it concerns (``request_id``, ``execution_id``, ``graph``, ``step``, ``worker``, from
``orchestrator.logcontext``), any ``extra=`` fields, and ``exc`` with the traceback.
Plain text stays the default, for the embedded mode and development.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from orchestrator import logcontext

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **logcontext.current(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class RequestIdMiddleware:
    """Takes the proxy's ``X-Request-ID`` (or makes one), logs under it and sends it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if given and len(given) <= 200 and given.isprintable() else uuid.uuid4().hex
        with logcontext.bound(request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
