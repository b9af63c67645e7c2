"""Deadlines: overdue approvals expire, the graph gets a timeout answer, the escalation group hears of it."""

from __future__ import annotations

import datetime
import logging
from unittest import mock

import pytest
from django.core import mail
from django.test import TestCase, override_settings
from django.utils import timezone

from approvals import payloads, services, tasks
from approvals.models import Approval
from orchestrator.models import AuditEntry
from orchestrator.models import Execution
from tests.approvals.email_backends import FailingEmailBackend
from tests.approvals.factories import HITL_VALUE, make_approval, make_execution, tasks_inline
from tests.factories import make_role_users, make_user

LATER = datetime.timedelta(minutes=5)


@override_settings(LOOPGATE_SITE_URL="https://loopgate.example.com", LOOPGATE_WEBHOOK_URL="")
class ExpiryTests(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()
        cls.manager = make_user("dana", "escalations")

    def setUp(self) -> None:
        patcher = mock.patch("orchestrator.tasks.advance.delay")
        self.advance = patcher.start()
        self.addCleanup(patcher.stop)
        patcher = mock.patch("approvals.tasks.notify_created.delay")
        patcher.start()
        self.addCleanup(patcher.stop)

    def expire(self, now: datetime.datetime) -> int:
        # The escalation's tasks run here, as a worker would run them once the expiry commits.
        with tasks_inline("notify_escalated", "email_escalated"), self.captureOnCommitCallbacks(execute=True):
            return services.approvals_expire_overdue(now=now)

    @override_settings(LOOPGATE_ESCALATION_GROUP="escalations")
    def test_an_overdue_question_times_out_resumes_the_graph_and_tells_the_escalation_group(self) -> None:
        approval = make_approval(value={"action": "shutdown_cluster", "cluster": "dev-2", "timeout_seconds": 60})
        make_approval(value={"question": "later?", "timeout_seconds": 3600})
        assert self.expire(timezone.now()) == 0
        assert self.expire(timezone.now() + LATER) == 1
        approval.refresh_from_db()
        assert approval.status == Approval.Status.EXPIRED
        assert approval.resume_value == {"type": "timeout"}
        assert approval.escalated_at is not None and approval.decided_by is None
        assert Execution.objects.get(id=approval.execution_id).status == Execution.Status.QUEUED
        self.advance.assert_called_once_with(str(approval.execution_id))
        assert AuditEntry.objects.get().outcome == "expired"
        [email] = mail.outbox
        assert email.to == ["alice@example.com", "dana@example.com", "rita@example.com"]
        assert email.subject == "Expired unanswered: shutdown_cluster (t_mail)"
        assert f"https://loopgate.example.com/approvals/{approval.id}/" in email.body
        assert services.approval_resume_map(execution_id=approval.execution_id,
                                            interrupt_ids=[approval.interrupt_id]) == {
            approval.interrupt_id: {"type": "timeout"}}

    def test_a_langchain_request_times_out_as_a_rejection_the_middleware_understands(self) -> None:
        approval = make_approval(value={**HITL_VALUE, "deadline": "2020-01-01T00:00:00Z"})
        self.expire(timezone.now())
        approval.refresh_from_db()
        assert approval.resume_value["decisions"][0]["type"] == "reject"
        # The default escalation group is the admins; reviewers hear of it too.
        assert [e.to for e in mail.outbox] == [["alice@example.com", "rita@example.com"]]

    def test_a_payload_that_allows_no_refusal_cancels_its_execution_instead(self) -> None:
        execution = make_execution()
        approval = make_approval(execution=execution, value={
            **HITL_VALUE, "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve"]}],
            "timeout_seconds": 1})
        sibling = make_approval(execution=execution, value="ok?")
        with mock.patch("traces.live.announce_execution") as announce:
            self.expire(timezone.now() + LATER)
        execution.refresh_from_db()
        assert execution.status == Execution.Status.CANCELLED
        assert "expired unanswered" in execution.error["reason"]
        assert Approval.objects.get(id=approval.id).status == Approval.Status.EXPIRED
        assert Approval.objects.get(id=approval.id).resume_value is None
        assert Approval.objects.get(id=sibling.id).status == Approval.Status.CANCELLED
        self.advance.assert_not_called()
        # Its trace page and the executions list hear of it, as of any cancel.
        announce.assert_called_once_with(execution.id, Execution.Status.CANCELLED)

    @override_settings(LOOPGATE_WEBHOOK_URL="http://127.0.0.1:9/hook")
    def test_an_expiry_also_fires_the_escalation_webhook(self) -> None:
        approval = make_approval(value={"question": "ok?", "timeout_seconds": 1})
        with mock.patch("approvals.tasks.deliver_webhook.delay") as delay:
            self.expire(timezone.now() + LATER)
        assert Approval.objects.get(id=approval.id).escalated_at is not None
        [(event, body)] = [c.args for c in delay.call_args_list]
        assert event == "approval.escalated"
        assert f'"id":"{approval.id}"' in body and '"status":"expired"' in body

    def test_a_decided_approval_never_expires(self) -> None:
        approval = make_approval(value={"question": "ok?", "timeout_seconds": 1})
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_decide(approval_id=approval.id, user=self.users["reviewer"],
                                     decisions=[{"type": "approve"}])
        assert self.expire(timezone.now() + LATER) == 0
        assert Approval.objects.get(id=approval.id).status == Approval.Status.APPROVED

    def test_pending_approvals_of_ended_executions_are_cancelled(self) -> None:
        approval = make_approval(value="ok?", status=Execution.Status.CANCELLED)
        self.expire(timezone.now())
        assert Approval.objects.get(id=approval.id).status == Approval.Status.CANCELLED


@pytest.mark.django_db(transaction=True)
class TestExpiryKeepsGoing:
    """Committed for real, so each expiry's after-commit work runs inside the loop, as in production."""

    @pytest.fixture(autouse=True)
    def _no_broker(self) -> None:  # type: ignore[misc]
        with mock.patch("orchestrator.tasks.advance.delay"), mock.patch("approvals.tasks.notify_created.delay"):
            yield

    def test_an_smtp_server_that_is_down_never_stops_the_other_approvals_from_expiring(self, settings) -> None:  # type: ignore[no-untyped-def]
        settings.EMAIL_BACKEND = "tests.approvals.email_backends.FailingEmailBackend"
        FailingEmailBackend.attempts = 0
        make_role_users()
        approvals = [make_approval(value={"question": f"{n}?", "timeout_seconds": 1}) for n in range(3)]
        with tasks_inline("notify_escalated", "email_escalated"), \
                mock.patch.object(tasks.email_escalated, "retry", side_effect=_retry_now(tasks.email_escalated)):
            assert services.approvals_expire_overdue(now=timezone.now() + LATER) == 3
        for approval in approvals:
            approval.refresh_from_db()
            assert approval.status == Approval.Status.EXPIRED
            assert approval.escalated_at is None  # no one was told: not marked escalated
        # Each escalation email was tried, then retried until the task gave up.
        assert FailingEmailBackend.attempts == 3 * (tasks.EMAIL_MAX_RETRIES + 1)

    def test_one_approval_that_cannot_expire_does_not_stop_the_others(self, caplog) -> None:  # type: ignore[no-untyped-def]
        first = make_approval(value={"question": "first?", "timeout_seconds": 1})
        second = make_approval(value={"question": "second?", "timeout_seconds": 1})
        real = payloads.timeout_value
        calls = []

        def broken_once(fmt, actions):  # type: ignore[no-untyped-def]
            calls.append(fmt)
            if len(calls) == 1:
                raise RuntimeError("a payload no one foresaw")
            return real(fmt, actions)

        with mock.patch("approvals.services.payloads.timeout_value", side_effect=broken_once), \
                mock.patch("approvals.tasks.notify_escalated.delay"), caplog.at_level(logging.ERROR):
            assert services.approvals_expire_overdue(now=timezone.now() + LATER) == 1
        statuses = sorted(Approval.objects.filter(id__in=[first.id, second.id]).values_list("status", flat=True))
        assert statuses == [Approval.Status.EXPIRED, Approval.Status.PENDING]  # the broken one rolled back
        assert "a payload no one foresaw" in caplog.text


def _retry_now(task):  # type: ignore[no-untyped-def]
    """The task's retry without the wait (retries run in this process here)."""
    real = task.retry
    return lambda *args, **kwargs: real(*args, **{**kwargs, "countdown": 0})


def test_the_expiry_task_is_scheduled_with_the_reconciler() -> None:
    from orchestrator.celery import schedule_periodic_tasks

    sender = mock.Mock()
    with override_settings(LOOPGATE_APPROVAL_EXPIRY_SECONDS=7):
        schedule_periodic_tasks(sender)
    calls = {c.kwargs["name"]: c.args for c in sender.add_periodic_task.call_args_list}
    assert calls["expire overdue approvals"][0] == 7.0
    sender.signature.assert_any_call("approvals.tasks.expire_overdue")
