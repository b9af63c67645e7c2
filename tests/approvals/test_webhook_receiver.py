"""Webhooks signed the Standard Webhooks way, checked by the README's own recipe in a receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from approvals import notifications
from tests.approvals.factories import make_approval
from tests.approvals.webhook_receiver import RecipeReceiver

pytestmark = pytest.mark.django_db
SECRET = "s3cret"


@pytest.fixture
def receiver(settings) -> Iterator[RecipeReceiver]:  # type: ignore[no-untyped-def]
    box = RecipeReceiver(SECRET)
    settings.LOOPGATE_WEBHOOK_URL, settings.LOOPGATE_WEBHOOK_SECRET = box.url, SECRET
    settings.LOOPGATE_SITE_URL = "https://loopgate.example.com"
    yield box
    box.close()


def resend(url: str, headers: dict[str, str], body: bytes) -> int:
    """What someone who captured a delivery does: send the same bytes with the same headers again."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a local receiver
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def deliver(event: str = "approval.created") -> str:
    body = notifications.webhook_body(event, make_approval())
    assert notifications.webhook_post(event, body) == 200
    return body


def test_a_delivery_passes_the_readme_recipe_and_is_acted_on_once(receiver: RecipeReceiver) -> None:
    body = deliver()
    [(headers, raw, status)] = receiver.attempts
    assert status == 200 and raw == body.encode()
    assert [event["event"] for event in receiver.acted] == ["approval.created"]
    assert headers["webhook-id"].startswith("msg_")
    stamp = headers["webhook-timestamp"]
    mac = hmac.new(SECRET.encode(), f"{headers['webhook-id']}.{stamp}.".encode() + raw, hashlib.sha256)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac.digest()).decode()


def test_a_captured_delivery_sent_again_is_not_acted_on_again(receiver: RecipeReceiver) -> None:
    deliver()
    [(headers, raw, _status)] = receiver.attempts
    assert resend(receiver.url, headers, raw) == 200
    assert len(receiver.acted) == 1


def test_a_captured_delivery_sent_after_five_minutes_is_refused(receiver: RecipeReceiver) -> None:
    deliver()
    [(headers, raw, _status)] = receiver.attempts
    receiver.clock_offset = 5 * 60 + 30
    assert resend(receiver.url, headers, raw) == 401
    assert len(receiver.acted) == 1


def test_a_delivery_under_a_new_id_or_time_or_body_fails_its_signature(receiver: RecipeReceiver) -> None:
    deliver()
    [(headers, raw, _status)] = receiver.attempts
    for change in ({"webhook-id": "msg_other"}, {"webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}):
        assert resend(receiver.url, {**headers, **change}, raw) == 401
    assert resend(receiver.url, headers, raw.replace(b"approval.created", b"approval.escalated")) == 401
    assert resend(receiver.url, {k: v for k, v in headers.items() if k != "webhook-signature"}, raw) == 401
    assert len(receiver.acted) == 1


def test_a_whsec_secret_is_a_base64_key_as_standard_webhooks_libraries_read_it(settings) -> None:  # type: ignore[no-untyped-def]
    key = b"\x00\xffkey-bytes"
    secret = "whsec_" + base64.b64encode(key).decode()
    box = RecipeReceiver(secret)
    try:
        settings.LOOPGATE_WEBHOOK_URL, settings.LOOPGATE_WEBHOOK_SECRET = box.url, secret
        deliver()
        [(headers, raw, status)] = box.attempts
        assert status == 200
        mac = hmac.new(key, f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + raw, hashlib.sha256)
        assert headers["webhook-signature"] == "v1," + base64.b64encode(mac.digest()).decode()
    finally:
        box.close()


def test_every_attempt_at_one_message_carries_its_id_with_a_fresh_signature(receiver: RecipeReceiver) -> None:
    receiver.failures = [503]
    approval = make_approval()
    body = notifications.webhook_body("approval.created", approval)
    with pytest.raises(notifications.WebhookError):
        notifications.webhook_post("approval.created", body)
    assert notifications.webhook_post("approval.created", body) == 200
    first, second = receiver.attempts
    assert first[0]["webhook-id"] == second[0]["webhook-id"]
    assert [status for *_rest, status in receiver.attempts] == [503, 200]
    assert len(receiver.acted) == 1
    # Another event about the same approval is another message.
    notifications.webhook_post("approval.escalated", notifications.webhook_body("approval.escalated", approval))
    assert receiver.attempts[2][0]["webhook-id"] != first[0]["webhook-id"]


def test_the_body_only_signature_is_still_sent_for_one_release(receiver: RecipeReceiver) -> None:
    deliver()
    [(headers, raw, _status)] = receiver.attempts
    assert headers["x-loopgate-signature"] == "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
