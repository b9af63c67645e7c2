"""A small webhook receiver built from the README's verification recipe, run as it stands there.

The recipe's code block (after ``<!-- webhook-recipe -->`` in README.md) is executed into a
namespace of the receiver's own, so a README that drifts from what Loopgate sends fails the tests.
The receiver answers ``401`` to deliveries that fail ``verify``, ``200`` without acting to repeats,
and otherwise acts (records the event) and answers ``200``, or the next of ``failures`` it was
told to answer first (retries included).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


def recipe_source() -> str:
    text = README.read_text()
    match = re.search(r"<!-- webhook-recipe -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md has no webhook recipe after <!-- webhook-recipe -->"
    return match.group(1)


def load_recipe() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "webhook_recipe"}
    exec(compile(recipe_source(), str(README), "exec"), namespace)  # noqa: S102 - our own README
    return namespace


class RecipeReceiver:
    """An HTTP endpoint on 127.0.0.1 verifying every delivery with the README's recipe."""

    def __init__(self, secret: str, *, failures: list[int] | None = None) -> None:
        self.secret = secret
        self.recipe = load_recipe()
        self.failures = list(failures or [])
        self.clock_offset = 0.0  # seconds added to the receiver's clock (a delivery replayed later)
        self.attempts: list[tuple[dict[str, str], bytes, int]] = []  # headers (lower-cased), body, answer
        self.acted: list[dict[str, Any]] = []  # the events acted on, once each
        self.arrivals: list[float] = []  # time.monotonic() of each attempt
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.handle(self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def handle(self, headers: Any, body: bytes) -> int:
        recipe = self.recipe
        with self.lock:
            now = recipe["time"].time() + self.clock_offset
            try:
                msg_id = recipe["verify"](self.secret, headers, body, now)
            except recipe["BadWebhook"]:
                status = 401
            else:
                if not recipe["first_time"](msg_id, now):
                    status = 200  # a repeat: already acted on
                elif self.failures:
                    status = self.failures.pop(0)  # the receiver is down: nothing acted on
                else:
                    self.acted.append(json.loads(body))
                    recipe["remember"](msg_id, now)
                    status = 200
            self.attempts.append(({k.lower(): v for k, v in headers.items()}, body, status))
            self.arrivals.append(time.monotonic())
        return status

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
