"""Slack's interactivity requests as Slack sends them (its documented format), signed for real.

The body is ``application/x-www-form-urlencoded`` with one field, ``payload``, holding the JSON;
``X-Slack-Request-Timestamp`` is Unix seconds and ``X-Slack-Signature`` is ``v0=`` and the hex
HMAC-SHA256 of ``v0:{timestamp}:{body}`` under the app's signing secret. Computed here with
``hmac`` directly, not with the SDK the endpoint verifies with, so the two check each other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

from django.test import Client

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0LOOPGATE"
URL = "/slack/interactivity/"


def block_actions(action_id: str, approval_id: Any, *, user: str, team: str = TEAM, channel: str = "CFINOPS",
                  message_ts: str = "1700000000.000001", trigger_id: str = "13345224609.738474920.8088930838d88f00")\
        -> dict[str, Any]:
    """A button click on a message, as Slack posts it."""
    return {
        "type": "block_actions",
        "team": {"id": team, "domain": "loopgate-test"},
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
        "api_app_id": "A0LOOPGATE",
        "token": "verification-token-deprecated",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id,
        "channel": {"id": channel, "name": "finops"},
        "message": {"type": "message", "ts": message_ts, "text": "Approval waiting"},
        "response_url": "https://hooks.slack.test/actions/T0LOOPGATE/1/abc",
        "actions": [{"action_id": action_id, "block_id": f"approval:{approval_id}", "type": "button",
                     "value": str(approval_id), "action_ts": f"{time.time():.6f}",
                     "text": {"type": "plain_text", "text": action_id.title(), "emoji": True}}],
    }


def view_submission(approval_id: Any, values: dict[str, Any], *, user: str, team: str = TEAM) -> dict[str, Any]:
    """The Edit modal submitted: ``values`` is ``view.state.values`` ({block_id: {action_id: state}})."""
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "loopgate-test"},
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
        "api_app_id": "A0LOOPGATE",
        "token": "verification-token-deprecated",
        "trigger_id": "12466734323.1395872398.ac3f9c1fe1d0a7c2d4a1aa3a",
        "view": {
            "id": "V0123", "team_id": team, "type": "modal", "callback_id": "loopgate_edit",
            "private_metadata": json.dumps({"approval": str(approval_id)}),
            "state": {"values": values}, "hash": "156772938.1827394",
        },
    }


def text(value: str | None) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def number(value: str | None) -> dict[str, Any]:
    return {"value": {"type": "number_input", "value": value}}


def checkbox(checked: bool) -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": "Yes"}, "value": "true"}] if checked else []
    return {"value": {"type": "checkboxes", "selected_options": options}}


def body_of(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def signature(body: str, timestamp: int, secret: str = SECRET) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()


def post(client: Client, payload: dict[str, Any], *, timestamp: int | None = None, secret: str = SECRET,
         signed: bool = True, body: str | None = None):  # type: ignore[no-untyped-def]
    """POST the payload to the endpoint as Slack would (signed now, unless told otherwise)."""
    body = body_of(payload) if body is None else body
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {"X-Slack-Request-Timestamp": str(timestamp)}
    if signed:
        headers["X-Slack-Signature"] = signature(body, timestamp, secret)
    return client.post(URL, data=body, content_type="application/x-www-form-urlencoded", headers=headers)
