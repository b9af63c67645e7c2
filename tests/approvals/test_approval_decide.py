"""Deciding, through the service, against the database."""

from __future__ import annotations

from unittest import mock

from django.core.exceptions import ValidationError
from django.test import TestCase, override_settings

from approvals import services
from approvals.models import Approval
from orchestrator.models import AuditEntry
from orchestrator.errors import AlreadyDecided, InvalidState, PermissionDenied
from orchestrator.models import Execution
from tests.approvals.factories import EMAIL_SCHEMA, HITL_VALUE, make_approval, make_execution
from tests.factories import make_role_users, make_user

Status = Approval.Status


class ApprovalTestCase(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()
        cls.rita = cls.users["reviewer"]

    def setUp(self) -> None:
        patcher = mock.patch("orchestrator.tasks.advance.delay")
        self.advance = patcher.start()
        self.addCleanup(patcher.stop)
        patcher = mock.patch("approvals.tasks.notify_created.delay")
        self.notify = patcher.start()
        self.addCleanup(patcher.stop)

    def decide(self, approval: Approval, *decisions: dict, user=None, comment: str = "") -> Approval:  # type: ignore[no-untyped-def]
        with self.captureOnCommitCallbacks(execute=True):
            return services.approval_decide(approval_id=approval.id, user=user or self.rita,
                                            decisions=list(decisions), comment=comment)


class ApprovalDecideTests(ApprovalTestCase):
    def test_an_approval_records_who_when_what_and_queues_the_execution(self) -> None:
        approval = make_approval()
        approval = self.decide(approval, {"type": "approve"}, comment="looks right")
        assert (approval.status, approval.decided_by, approval.comment) == (Status.APPROVED, self.rita, "looks right")
        assert approval.decided_at is not None
        assert approval.resume_value == {"decisions": [{"type": "approve"}]}
        execution = Execution.objects.get(id=approval.execution_id)
        assert execution.status == Execution.Status.QUEUED
        self.advance.assert_called_once_with(str(execution.id))
        entry = AuditEntry.objects.get()
        assert (entry.kind, entry.actor, entry.actor_name, entry.outcome, entry.action, entry.graph_name) == (
            AuditEntry.Kind.DECISION, self.rita, "rita", "approved", "send_email", "t_mail")
        assert entry.detail["resume_value"] == approval.resume_value
        assert entry.comment == "looks right"

    def test_an_edit_sends_the_edited_call_in_the_graphs_format(self) -> None:
        args = {"to": "bob@example.com", "subject": "Q3 report", "body": "Numbers attached."}
        approval = self.decide(make_approval(), {"type": "edit", "args": args})
        assert approval.status == Status.EDITED
        assert approval.resume_value == {"decisions": [
            {"type": "edit", "edited_action": {"name": "send_email", "args": args}}]}

    def test_a_second_decision_is_refused_naming_who_decided_and_what(self) -> None:
        approval = self.decide(make_approval(), {"type": "reject", "message": "no"})
        with self.assertRaises(AlreadyDecided) as caught:
            self.decide(approval, {"type": "approve"}, user=self.users["admin"])
        assert caught.exception.approval.decided_by == self.rita
        assert caught.exception.approval.status == Status.REJECTED
        assert caught.exception.extra["decided_by"] == "rita"
        assert AuditEntry.objects.count() == 1
        self.advance.assert_called_once()

    def test_invalid_edits_save_nothing_and_leave_the_graph_waiting(self) -> None:
        value = {**HITL_VALUE, "review_configs": [{**HITL_VALUE["review_configs"][0], "args_schema": EMAIL_SCHEMA}]}
        approval = make_approval(value=value)
        with self.assertRaises(ValidationError) as caught:
            self.decide(approval, {"type": "edit", "args": {"to": "nobody", "subject": "s", "body": "b"}})
        assert caught.exception.message_dict == {"0.args.to": ["Not a valid email."]}
        approval.refresh_from_db()
        assert (approval.status, approval.resume_value, approval.decided_by) == (Status.PENDING, None, None)
        assert not AuditEntry.objects.exists()
        assert Execution.objects.get(id=approval.execution_id).status == Execution.Status.INTERRUPTED
        self.advance.assert_not_called()

    def test_operators_and_users_without_a_role_may_not_decide(self) -> None:
        approval = make_approval()
        for role in ("operator", "outsider"):
            with self.assertRaises(PermissionDenied):
                self.decide(approval, {"type": "approve"}, user=self.users[role])
        approval.refresh_from_db()
        assert approval.status == Status.PENDING

    def test_with_several_pending_interrupts_the_graph_resumes_only_after_the_last_decision(self) -> None:
        execution = make_execution()
        first = make_approval(execution=execution, value="left ok?")
        second = make_approval(execution=execution, value="right ok?")
        self.decide(first, {"type": "approve"})
        assert Execution.objects.get(id=execution.id).status == Execution.Status.INTERRUPTED
        self.advance.assert_not_called()
        assert services.approval_resume_map(execution_id=execution.id,
                                            interrupt_ids=[first.interrupt_id, second.interrupt_id]) is None
        self.decide(second, {"type": "respond", "message": "go left"})
        assert Execution.objects.get(id=execution.id).status == Execution.Status.QUEUED
        self.advance.assert_called_once_with(str(execution.id))
        assert services.approval_resume_map(
            execution_id=execution.id, interrupt_ids=[first.interrupt_id, second.interrupt_id]
        ) == {first.interrupt_id: {"type": "approve", "by": "rita"},
              second.interrupt_id: {"type": "respond", "message": "go left", "by": "rita"}}

    def test_an_approval_of_an_ended_execution_cannot_be_decided(self) -> None:
        approval = make_approval(status=Execution.Status.CANCELLED)
        with self.assertRaises(InvalidState):
            self.decide(approval, {"type": "approve"})

    @override_settings(LOOPGATE_FOUR_EYES_GRAPHS=["t_mail"])
    def test_four_eyes_keeps_whoever_started_the_execution_from_deciding(self) -> None:
        alice = self.users["admin"]
        approval = make_approval(created_by=alice)
        with self.assertRaises(PermissionDenied) as caught:
            self.decide(approval, {"type": "approve"}, user=alice)
        assert "Four eyes" in caught.exception.message
        assert self.decide(approval, {"type": "approve"}).status == Status.APPROVED

    def test_four_eyes_applies_only_to_the_graphs_named(self) -> None:
        alice = self.users["admin"]
        assert self.decide(make_approval(created_by=alice), {"type": "approve"}, user=alice).status == Status.APPROVED

    def test_new_approvals_are_announced_once_even_when_the_runner_hands_them_over_again(self) -> None:
        execution = make_execution()
        interrupt = {"id": "i-1", "value": "ok?", "node": "n", "checkpoint_id": "c", "checkpoint_ns": "",
                     "response_schema": None}
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_create_for_interrupts(execution_id=execution.id, interrupts=[interrupt])
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_create_for_interrupts(execution_id=execution.id, interrupts=[interrupt])
        assert Approval.objects.filter(execution=execution).count() == 1
        assert self.notify.call_count == 1

    @override_settings(LOOPGATE_APPROVAL_TIMEOUTS={"t_mail": 600})
    def test_a_graph_setting_gives_approvals_a_deadline_when_the_payload_has_none(self) -> None:
        approval = make_approval(value="ok?")
        assert 590 < (approval.deadline - approval.created_at).total_seconds() <= 600
        assert make_approval(value={"question": "ok?", "timeout_seconds": 30}).deadline < approval.deadline


class BulkDecideTests(ApprovalTestCase):
    def test_several_approvals_are_decided_at_once_and_each_is_reported(self) -> None:
        ones = [make_approval(value="ok?") for _ in range(2)]
        taken = self.decide(make_approval(value="ok?"), {"type": "approve"}, user=self.users["admin"])
        no_reject = make_approval(value={**HITL_VALUE, "review_configs": [
            {"action_name": "send_email", "allowed_decisions": ["approve"]}]})
        with self.captureOnCommitCallbacks(execute=True):
            outcome = services.approvals_decide_bulk(
                approval_ids=[a.id for a in (*ones, taken, no_reject)], user=self.rita, decision="reject",
                comment="not now")
        assert [a.id for a in outcome.decided] == [a.id for a in ones]
        assert [a.id for a in outcome.already] == [taken.id]
        assert outcome.already[0].decided_by == self.users["admin"]
        assert [(a.id, "Reject is not allowed" in why) for a, why in outcome.refused] == [(no_reject.id, True)]
        for approval in ones:
            approval.refresh_from_db()
            assert approval.status == Status.REJECTED
            assert approval.resume_value == {"type": "reject", "message": "not now", "by": "rita",
                                             "comment": "not now"}


class ClaimTests(ApprovalTestCase):
    def test_a_claim_shows_who_is_on_it_and_only_they_or_an_admin_release_it(self) -> None:
        approval = make_approval()
        with self.captureOnCommitCallbacks(execute=True):
            approval = services.approval_claim(approval_id=approval.id, user=self.rita)
        assert approval.claimed_by == self.rita
        reviewer2 = make_user("ruth", "reviewers")
        with self.assertRaises(InvalidState) as caught:
            services.approval_claim(approval_id=approval.id, user=reviewer2)
        assert caught.exception.message == "rita is already on it."
        with self.assertRaises(PermissionDenied):
            services.approval_release(approval_id=approval.id, user=reviewer2)
        with self.assertRaises(PermissionDenied):
            services.approval_claim(approval_id=approval.id, user=self.users["operator"])
        approval = services.approval_release(approval_id=approval.id, user=self.users["admin"])
        assert approval.claimed_by is None
        assert list(AuditEntry.objects.order_by("id").values_list("kind", "actor_name")) == [
            ("claim", "rita"), ("release", "alice")]
