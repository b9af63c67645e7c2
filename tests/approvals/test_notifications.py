"""Email to reviewers and the signed, retried webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest import mock

import pytest
from django.core import mail
from django.test import Client, TestCase, override_settings

from approvals import notifications, tasks
from approvals.models import Approval
from tests.approvals.email_backends import FlakyEmailBackend, RefusingEmailBackend
from tests.approvals.factories import make_approval
from tests.factories import make_role_users, make_user


class Receiver:
    """A local webhook endpoint that answers with the given statuses in turn, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver([])
    yield box
    box.close()


@override_settings(LOOPGATE_SITE_URL="https://loopgate.example.com", LOOPGATE_WEBHOOK_URL="")
class EmailTests(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()
        make_user("quiet", "reviewers").__class__.objects.filter(username="quiet").update(email="")

    def test_new_approvals_email_every_reviewer_and_admin_with_a_link_to_decide(self) -> None:
        approval = make_approval()
        assert notifications.email_created([approval.id]) == 1
        [email] = mail.outbox
        assert sorted(email.to) == ["alice@example.com", "rita@example.com"]
        assert email.subject == "Approval waiting: send_email (t_mail)"
        assert f"Decide: https://loopgate.example.com/approvals/{approval.id}/" in email.body
        assert "to: alice@example.com, subject: Q3 report" in email.body

    def test_an_approval_decided_before_the_email_went_out_is_not_announced(self) -> None:
        approval = make_approval()
        approval.status = "approved"
        approval.save()
        with mock.patch.object(tasks.email_created, "delay") as email:
            notifications.notify_created([approval.id])
        email.assert_not_called()
        assert notifications.email_created([approval.id]) == 0
        assert mail.outbox == []

    def test_new_approvals_queue_the_email_as_a_task_of_its_own(self) -> None:
        approval = make_approval()
        with mock.patch.object(tasks.email_created, "delay") as email:
            notifications.notify_created([approval.id])
        email.assert_called_once_with([str(approval.id)])
        assert mail.outbox == []  # the task sends it, retried on failure

    def test_a_subject_never_carries_a_newline_from_a_payload(self) -> None:
        approval = make_approval(value={"action": "evil\r\nBcc: x@example.com", "x": 1})
        notifications.email_created([approval.id])
        assert "\n" not in mail.outbox[0].subject and "\r" not in mail.outbox[0].subject

    def test_the_link_leads_to_the_approval_after_logging_in(self) -> None:
        approval = make_approval()
        path = notifications.approval_url(approval).removeprefix("https://loopgate.example.com")
        client = Client()
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/login/?next={path}"
        response = client.post(response["Location"], {"username": "rita", "password": "pw-for-tests"})
        assert response["Location"] == path
        assert client.get(path).status_code == 200


def retried_without_waiting(task):  # type: ignore[no-untyped-def]
    """Patch ``task.retry`` to run the retry at once (in this process) and note its countdowns."""
    countdowns: list[float] = []
    real_retry = task.retry

    def retry(*args, **kwargs):  # type: ignore[no-untyped-def]
        countdowns.append(kwargs["countdown"])
        return real_retry(*args, **{**kwargs, "countdown": 0})

    return mock.patch.object(task, "retry", side_effect=retry), countdowns


@override_settings(LOOPGATE_SITE_URL="https://loopgate.example.com", LOOPGATE_WEBHOOK_URL="",
                   EMAIL_BACKEND="tests.approvals.email_backends.FlakyEmailBackend")
class EmailRetryTests(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()

    def setUp(self) -> None:
        patcher = mock.patch("approvals.tasks.notify_created.delay")
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(setattr, FlakyEmailBackend, "failures", 0)

    def expired(self) -> Approval:
        approval = make_approval(value={"question": "ok?"})
        Approval.objects.filter(id=approval.id).update(status=Approval.Status.EXPIRED)
        return approval

    def test_a_new_approval_email_lost_to_a_dropped_connection_is_retried_with_backoff(self) -> None:
        approval = make_approval()
        FlakyEmailBackend.failures = 2
        patch, countdowns = retried_without_waiting(tasks.email_created)
        with patch:
            tasks.email_created.apply(args=[[str(approval.id)]])
        [email] = mail.outbox
        assert email.subject == "Approval waiting: send_email (t_mail)"
        assert 4 <= countdowns[0] <= 5 and 8 <= countdowns[1] <= 10  # exponential, with jitter

    def test_escalated_at_is_set_only_once_the_escalation_email_is_sent(self) -> None:
        approval = self.expired()
        FlakyEmailBackend.failures = 1
        patch, countdowns = retried_without_waiting(tasks.email_escalated)
        with patch:
            tasks.email_escalated.apply(args=[[str(approval.id)]])
        assert len(countdowns) == 1 and len(mail.outbox) == 1
        approval.refresh_from_db()
        assert approval.escalated_at is not None
        # Running it again (a redelivered message) tells no one twice.
        tasks.email_escalated.apply(args=[[str(approval.id)]])
        assert len(mail.outbox) == 1

    def test_an_escalation_email_that_never_goes_out_leaves_the_approval_unescalated(self) -> None:
        approval = self.expired()
        FlakyEmailBackend.failures = tasks.EMAIL_MAX_RETRIES + 1
        patch, countdowns = retried_without_waiting(tasks.email_escalated)
        with patch, self.assertLogs("approvals.tasks", "ERROR") as logs:
            tasks.email_escalated.apply(args=[[str(approval.id)]])
        assert len(countdowns) == tasks.EMAIL_MAX_RETRIES
        assert mail.outbox == []
        assert Approval.objects.get(id=approval.id).escalated_at is None
        assert "not sent after" in logs.output[0]

    @override_settings(EMAIL_BACKEND="tests.approvals.email_backends.RefusingEmailBackend")
    def test_an_email_the_server_refuses_for_good_is_not_retried(self) -> None:
        approval = make_approval()
        RefusingEmailBackend.attempts = 0
        with self.assertLogs("approvals.tasks", "ERROR") as logs:
            tasks.email_created.apply(args=[[str(approval.id)]])
        assert RefusingEmailBackend.attempts == 1
        assert "permanent" in logs.output[0]


@pytest.mark.django_db
def test_the_webhook_is_signed_with_hmac_sha256_of_the_exact_body(receiver: Receiver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOOPGATE_WEBHOOK_URL, settings.LOOPGATE_WEBHOOK_SECRET = receiver.url, "s3cret"
    settings.LOOPGATE_SITE_URL = "https://loopgate.example.com"
    approval = make_approval()
    body = notifications.webhook_body("approval.created", approval)
    assert notifications.webhook_post("approval.created", body) == 200
    [(headers, raw)] = receiver.requests
    expected = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Loopgate-Signature"], expected)
    assert headers["X-Loopgate-Event"] == "approval.created"
    assert headers["Content-Type"] == "application/json"
    data = json.loads(raw)
    assert data["event"] == "approval.created"
    assert data["approval"]["url"] == f"https://loopgate.example.com/approvals/{approval.id}/"
    assert (data["approval"]["action"], data["approval"]["graph"]) == ("send_email", "t_mail")


@pytest.mark.django_db
def test_a_failing_webhook_is_retried_with_backoff_until_it_is_delivered(receiver: Receiver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOOPGATE_WEBHOOK_URL, settings.LOOPGATE_WEBHOOK_SECRET = receiver.url, "s3cret"
    receiver.statuses = [503, 502]
    approval = make_approval()
    body = notifications.webhook_body("approval.created", approval)
    countdowns = []
    real_retry = tasks.deliver_webhook.retry

    def retry(*args, **kwargs):  # type: ignore[no-untyped-def]
        countdowns.append(kwargs["countdown"])
        return real_retry(*args, **{**kwargs, "countdown": 0})

    with mock.patch.object(tasks.deliver_webhook, "retry", side_effect=retry):
        tasks.deliver_webhook.apply(args=["approval.created", body])
    assert len(receiver.requests) == 3
    assert {raw for _headers, raw in receiver.requests} == {body.encode()}
    assert 4 <= countdowns[0] <= 5 and 8 <= countdowns[1] <= 10  # exponential, with jitter


@pytest.mark.django_db
def test_a_webhook_refused_with_a_client_error_is_not_retried(receiver: Receiver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOOPGATE_WEBHOOK_URL, settings.LOOPGATE_WEBHOOK_SECRET = receiver.url, "s3cret"
    receiver.statuses = [410]
    approval = make_approval()
    tasks.deliver_webhook.apply(args=["approval.created", notifications.webhook_body("approval.created", approval)])
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_new_approvals_queue_one_webhook_each(settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOOPGATE_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    first, second = make_approval(), make_approval()
    with mock.patch.object(tasks.deliver_webhook, "delay") as delay, mock.patch.object(tasks.email_created, "delay"):
        notifications.notify_created([first.id, second.id])
    assert [c.args[0] for c in delay.call_args_list] == ["approval.created", "approval.created"]
    assert [json.loads(c.args[1])["approval"]["id"] for c in delay.call_args_list] == [str(first.id), str(second.id)]
