"""A stand-in for Slack's Web API on 127.0.0.1: records every call and answers the way Slack does.

``slack_sdk``'s ``WebClient`` is pointed at it with ``LOOPGATE_SLACK_API_URL``. Each call is
``POST /api/<method>`` with the bot token as ``Authorization: Bearer …`` and the arguments as
JSON (chat.postMessage, chat.update, views.open) or form fields (conversations.open,
chat.postEphemeral); the answer is Slack's ``{"ok": true, …}`` JSON, or ``{"ok": false,
"error": "invalid_auth"}`` for a wrong token. ``fail(method, status, error)`` makes the next
call of a method fail as Slack does when rate limited or down, to exercise the retries.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

TOKEN = "xoxb-loopgate-test"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str


class SlackStandIn:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.failures: dict[str, list[tuple[int, str]]] = {}
        self.lock = threading.Lock()
        self._ts = itertools.count(1)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = standin.handle(self.path, self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/api/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, status: int = 429, error: str = "ratelimited", times: int = 1) -> None:
        with self.lock:
            self.failures.setdefault(method, []).extend([(status, error)] * times)

    def of(self, method: str, **match: Any) -> list[Call]:
        """The recorded calls of ``method`` whose arguments include ``match``."""
        with self.lock:
            return [c for c in self.calls if c.method == method and all(c.args.get(k) == v for k, v in match.items())]

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        method = path.rsplit("/", 1)[-1].split("?", 1)[0]
        if (headers.get("Content-Type") or "").startswith("application/json"):
            args = json.loads(body or b"{}")
        else:
            args = dict(parse_qsl(body.decode()))
            for key in ("blocks", "view"):
                if isinstance(args.get(key), str):
                    args[key] = json.loads(args[key])
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        with self.lock:
            self.calls.append(Call(method, args, token))
            failures = self.failures.get(method)
            if failures:
                status, error = failures.pop(0)
                return status, {"ok": False, "error": error}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}
        return 200, self.answer(method, args)

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ts = f"1700000000.{next(self._ts):06d}"
        if method == "chat.postMessage":
            channel = str(args.get("channel"))
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": channel, "ts": ts,
                    "message": {"type": "message", "text": args.get("text"), "blocks": args.get("blocks"), "ts": ts}}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts"), "text": args.get("text")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.getPermalink":
            return {"ok": True, "channel": args.get("channel"),
                    "permalink": f"https://example.slack.test/archives/{args.get('channel')}/p{args.get('message_ts')}"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", "")).lstrip("UW")}}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0123", **(args.get("view") or {})}}
        return {"ok": False, "error": "unknown_method"}
