"""The inbox, one approval and the audit log through the test client, for every role."""

from __future__ import annotations

import re

import csv
import datetime
import io
import json
from unittest import mock

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from approvals import selectors, services
from approvals.models import Approval
from orchestrator.models import AuditEntry
from orchestrator.models import Execution
from tests.approvals.factories import EMAIL_SCHEMA, HITL_VALUE, make_approval, make_execution
from tests.base import PageTestCase

HOSTILE = '<script>alert("x")</script>'
TOOL_SCHEMA = {"type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"},
                                                "body": {"type": "string"}}, "required": ["to", "subject", "body"]}


def with_schema(schema: dict) -> dict:
    return {**HITL_VALUE, "review_configs": [{**HITL_VALUE["review_configs"][0], "args_schema": schema}]}
HTMX = {"HTTP_HX_REQUEST": "true"}


class ApprovalViewTestCase(PageTestCase):
    def setUp(self) -> None:
        super().setUp()
        for target in ("orchestrator.tasks.advance.delay", "approvals.tasks.notify_created.delay"):
            patcher = mock.patch(target)
            patcher.start()
            self.addCleanup(patcher.stop)

    def post_decision(self, approval: Approval, data: dict, **extra: str):  # type: ignore[no-untyped-def]
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post(reverse("approvals:decide", args=[approval.id]), data, **extra)


class InboxViewTests(ApprovalViewTestCase):
    def test_a_reviewer_sees_pending_approvals_newest_first_with_a_summary_and_bulk_buttons(self) -> None:
        older = make_approval(value="first?")
        newer = make_approval()
        self.login("reviewer")
        response = self.client.get(reverse("approvals:inbox"))
        assert response.status_code == 200
        assert [a.id for a in response.context["approvals"]] == [newer.id, older.id]
        self.assertContains(response, f'id="approval-{newer.id}"')
        self.assertContains(response, "to: alice@example.com, subject: Q3 report, body: Numbers attached.")
        self.assertContains(response, "waiting &lt;1 min")
        self.assertContains(response, "Approve selected")
        self.assertContains(response, f'name="ids" value="{newer.id}"')
        self.assertContains(response, 'ws-connect="/ws/approvals/?rows=1&amp;since=')
        assert response.context["nav_pending_count"] == 2

    def test_an_operator_sees_the_list_but_no_buttons(self) -> None:
        approval = make_approval()
        self.login("operator")
        response = self.client.get(reverse("approvals:inbox"))
        self.assertContains(response, f'id="approval-{approval.id}"')
        self.assertNotContains(response, "Approve selected")
        self.assertNotContains(response, 'name="ids"')
        self.assertNotContains(response, ">Claim<")
        self.assertContains(response, "deciding them needs the reviewer or admin role")

    def test_filters_by_graph_and_by_claim(self) -> None:
        mail = make_approval()
        other = make_approval(value="ok?", graph_name="finops")
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_claim(approval_id=other.id, user=self.users["reviewer"])
        self.login("reviewer")
        by_graph = self.client.get(reverse("approvals:inbox"), {"graph": "t_mail"})
        assert [a.id for a in by_graph.context["approvals"]] == [mail.id]
        mine = self.client.get(reverse("approvals:inbox"), {"mine": "on"})
        assert [a.id for a in mine.context["approvals"]] == [other.id]
        self.assertContains(mine, 'ws-connect="/ws/approvals/?rows=1&amp;mine=1&amp;since=')
        old = self.client.get(reverse("approvals:inbox"), {"age": "1h"})
        assert list(old.context["approvals"]) == []
        self.assertContains(old, "No approvals match these filters.")

    def test_the_age_filter_keeps_the_approvals_waiting_that_long(self) -> None:
        old = make_approval(value="waiting since the morning?")
        Approval.objects.filter(id=old.id).update(created_at=timezone.now() - datetime.timedelta(hours=3))
        new = make_approval(value="just asked?")
        self.login("reviewer")
        url = reverse("approvals:inbox")
        assert [a.id for a in self.client.get(url, {"age": "1h"}).context["approvals"]] == [old.id]
        assert [a.id for a in self.client.get(url, {"age": "new"}).context["approvals"]] == [new.id]
        assert list(self.client.get(url, {"age": "1d"}).context["approvals"]) == []
        response = self.client.get(url, {"age": "1h"})
        self.assertContains(response, f'id="approval-{old.id}"')
        self.assertNotContains(response, f'id="approval-{new.id}"')
        self.assertContains(response, 'ws-connect="/ws/approvals/?rows=1&amp;age=1h&amp;since=')

    def test_a_forks_approval_shows_its_execution_and_that_it_is_a_fork(self) -> None:
        parent = make_approval()
        fork = make_approval(execution=make_execution())
        Execution.objects.filter(id=fork.execution_id).update(parent=parent.execution)
        self.login("reviewer")
        response = self.client.get(reverse("approvals:inbox"))
        rows = {str(a.id): a for a in response.context["approvals"]}
        assert set(rows) == {str(parent.id), str(fork.id)}
        html = response.content.decode()
        fork_row = html[html.index(f'id="approval-{fork.id}"'):]
        fork_row = fork_row[:fork_row.index("</tr>")]
        parent_row = html[html.index(f'id="approval-{parent.id}"'):]
        parent_row = parent_row[:parent_row.index("</tr>")]
        fork_pill = f'<span class="pill" title="A fork of execution {str(parent.execution_id)[:8]}">fork</span>'
        assert str(fork.execution_id)[:8] in fork_row and fork_pill in fork_row
        assert str(parent.execution_id)[:8] in parent_row and ">fork</span>" not in parent_row
        page = self.client.get(reverse("approvals:detail", args=[fork.id]))
        self.assertContains(page, fork_pill)
        self.assertContains(page, reverse("traces:execution", args=[parent.execution_id]))
        subtitle = page.content.decode().split('id="approval-head"')[1].split('<p class="subtitle">')[1].split("</p>")[0]
        assert str(fork.execution_id)[:8] in subtitle and fork_pill in subtitle

    def test_the_empty_inbox_says_what_to_do_next(self) -> None:
        self.login("reviewer")
        response = self.client.get(reverse("approvals:inbox"))
        self.assertContains(response, "No approvals are waiting.")
        self.assertContains(response, reverse("graphs"))

    def test_approvals_of_ended_executions_are_not_listed_and_decided_ones_show_in_the_history(self) -> None:
        gone = make_approval(value="ok?", status=Execution.Status.CANCELLED)
        done = make_approval(value="ok?")
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_decide(approval_id=done.id, user=self.users["admin"], decisions=[{"type": "approve"}])
        self.login("reviewer")
        response = self.client.get(reverse("approvals:inbox"))
        assert list(response.context["approvals"]) == []
        assert gone.id not in [a.id for a in response.context["approvals"]]
        assert [a.id for a in response.context["history"]] == [done.id]
        self.assertContains(response, "Recently decided")

    def test_the_history_puts_decided_and_expired_approvals_before_cancelled_ones(self) -> None:
        decided = make_approval(value="a?")
        expired = make_approval(value={"question": "b?", "timeout_seconds": 1})
        cancelled = make_approval(value="c?")
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_decide(approval_id=decided.id, user=self.users["admin"], decisions=[{"type": "approve"}])
        with self.captureOnCommitCallbacks(execute=True):
            assert services.approvals_expire_overdue(now=timezone.now() + datetime.timedelta(minutes=5)) == 1
        before = Approval.objects.get(id=cancelled.id).updated_at
        assert services.approvals_cancel_for_execution(execution_id=cancelled.execution_id) == 1
        cancelled = Approval.objects.get(id=cancelled.id)
        assert cancelled.status == Approval.Status.CANCELLED and cancelled.decided_at is None
        assert cancelled.updated_at > before  # when it was cancelled, for the history's "When"
        self.login("reviewer")
        response = self.client.get(reverse("approvals:inbox"))
        assert [a.id for a in response.context["history"]] == [expired.id, decided.id, cancelled.id]
        # No decided_at: Postgres sorts NULLs first when descending, which pushed the others out.
        assert [a.id for a in selectors.approval_history(user=self.users["reviewer"], limit=2)] == [
            expired.id, decided.id]

    def test_bulk_approve_decides_the_selected_and_reports_who_decided_the_rest(self) -> None:
        first, second = make_approval(value="a?"), make_approval(value="b?")
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_decide(approval_id=second.id, user=self.users["admin"],
                                     decisions=[{"type": "reject"}])
        self.login("reviewer")
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("approvals:bulk_decide"),
                                        {"ids": [first.id, second.id], "decision": "approve"}, follow=True)
        assert Approval.objects.get(id=first.id).status == Approval.Status.APPROVED
        assert Approval.objects.get(id=second.id).status == Approval.Status.REJECTED
        self.assertContains(response, "Approved 1: agent.")
        self.assertContains(response, "agent was already rejected by alice.")

    def test_bulk_decisions_over_htmx_return_the_inbox_body(self) -> None:
        approval = make_approval(value="a?")
        self.login("reviewer")
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("approvals:bulk_decide"),
                                        {"ids": [approval.id], "decision": "reject"}, **HTMX)
        self.assertTemplateUsed(response, "approvals/partials/inbox_body.html")
        self.assertContains(response, "Rejected 1: agent.")
        self.assertContains(response, 'id="inbox-body"')
        # "Recently decided" comes along out of band, with what was just decided in it (issue 14).
        html = response.content.decode()
        history = html[html.index('<div id="inbox-history" hx-swap-oob="true">'):]
        assert "Recently decided" in history and f'href="/approvals/{approval.id}/"' in history

    def test_a_forged_bulk_post_by_an_operator_is_forbidden(self) -> None:
        approval = make_approval(value="a?")
        self.login("operator")
        response = self.client.post(reverse("approvals:bulk_decide"), {"ids": [approval.id], "decision": "approve"})
        assert response.status_code == 403
        assert Approval.objects.get(id=approval.id).is_pending

    def test_claiming_from_the_inbox_shows_the_claimer_on_the_row(self) -> None:
        approval = make_approval()
        self.login("reviewer")
        response = self.client.post(reverse("approvals:claim", args=[approval.id]), {"filters": "graph=t_mail"})
        assert response["Location"] == reverse("approvals:inbox") + "?graph=t_mail"
        response = self.client.post(reverse("approvals:release", args=[approval.id]), **HTMX)
        self.assertContains(response, f'id="approval-{approval.id}"')
        self.assertContains(response, ">Claim</button>")


class DetailViewTests(ApprovalViewTestCase):
    def test_the_page_shows_each_action_its_arguments_the_buttons_allowed_and_the_context(self) -> None:
        from traces.models import Step
        from django.utils import timezone

        state = {"messages": [{"type": "human", "content": "Mail the Q3 numbers to Alice"},
                              {"type": "ai", "content": "", "tool_calls": [
                                  {"name": "send_email", "args": {"to": "alice@example.com"}, "id": "c1"}]}]}
        execution = make_execution(state=state)
        approval = make_approval(execution=execution)
        Step.objects.create(execution=execution, step=1, nodes=["model"], checkpoint_id="cp-1",
                            diff=[{"op": "add", "path": "messages[1]", "after": "…"}],
                            started_at=timezone.now(), finished_at=timezone.now())
        self.login("reviewer")
        response = self.client.get(reverse("approvals:detail", args=[approval.id]))
        assert response.status_code == 200
        self.assertContains(response, "What the agent wants to do")
        self.assertContains(response, '<th scope="row" class="mono">to</th>', html=False)
        for label in ("Approve", "Edit…", "Respond", "Reject"):
            self.assertContains(response, f">{label}</")
        self.assertContains(response, 'name="d-0-args"')  # no schema in the payload: one JSON editor
        self.assertContains(response, "Mail the Q3 numbers to Alice")
        self.assertContains(response, "messages[1]")
        self.assertContains(response, reverse("traces:execution", args=[execution.id]))
        self.assertContains(response, "1,234 / 10,000")

    def test_only_the_decisions_the_payload_allows_are_offered(self) -> None:
        approval = make_approval(value={**HITL_VALUE, "review_configs": [
            {"action_name": "send_email", "allowed_decisions": ["approve", "reject"]}]})
        self.login("reviewer")
        response = self.client.get(reverse("approvals:detail", args=[approval.id]))
        self.assertContains(response, 'value="approve"')
        self.assertContains(response, 'value="reject"')
        self.assertNotContains(response, 'value="respond"')
        self.assertNotContains(response, "Edit the arguments")

    def test_an_operator_sees_the_approval_without_any_buttons_and_a_forged_post_is_forbidden(self) -> None:
        approval = make_approval()
        self.login("operator")
        response = self.client.get(reverse("approvals:detail", args=[approval.id]))
        assert response.status_code == 200
        self.assertNotContains(response, 'class="decision-buttons"')
        self.assertNotContains(response, 'name="d-0-type"')
        self.assertNotContains(response, ">Claim<")
        self.assertContains(response, "deciding them needs the reviewer or admin role")
        for name in ("decide", "claim", "release"):
            response = self.client.post(reverse(f"approvals:{name}", args=[approval.id]), {"d-0-type": "approve"})
            assert response.status_code == 403, name
        assert Approval.objects.get(id=approval.id).is_pending

    def test_an_expiry_that_cancelled_the_execution_says_so(self) -> None:
        execution = make_execution()
        approval = make_approval(execution=execution, value={
            **HITL_VALUE, "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve"]}],
            "timeout_seconds": 1})
        answered = make_approval(value={"question": "ok?", "timeout_seconds": 1})
        with mock.patch("approvals.tasks.notify_escalated.delay"), self.captureOnCommitCallbacks(execute=True):
            services.approvals_expire_overdue(now=timezone.now() + datetime.timedelta(minutes=5))
        self.login("reviewer")
        page = self.client.get(reverse("approvals:detail", args=[approval.id]))
        self.assertContains(page, "Expired unanswered")
        self.assertContains(page, "The execution was cancelled")
        self.assertNotContains(page, "answered with a timeout")
        self.assertNotContains(page, "the escalation group was told")  # its email has not gone out yet
        page = self.client.get(reverse("approvals:detail", args=[answered.id]))
        self.assertContains(page, "The graph was answered with a timeout")

    @override_settings(LOOPGATE_FOUR_EYES_GRAPHS=["t_mail"])
    def test_four_eyes_the_reviewer_who_started_the_execution_sees_no_buttons_and_a_forged_post_is_forbidden(
        self,
    ) -> None:
        approval = make_approval(execution=make_execution(created_by=self.users["reviewer"]))
        self.login("reviewer")
        page = self.client.get(reverse("approvals:detail", args=[approval.id]))
        assert page.status_code == 200
        self.assertNotContains(page, 'class="decision-buttons"')
        self.assertNotContains(page, 'name="d-0-type"')
        self.assertContains(page, "Four eyes: you started this execution")
        response = self.post_decision(approval, {"d-0-type": "approve"})
        assert response.status_code == 403
        assert Approval.objects.get(id=approval.id).is_pending
        assert not AuditEntry.objects.exists()
        # Another reviewer, or an admin, decides it.
        self.login("admin")
        self.assertContains(self.client.get(reverse("approvals:detail", args=[approval.id])), 'name="d-0-type"')
        assert self.post_decision(approval, {"d-0-type": "approve"}).status_code == 302
        assert Approval.objects.get(id=approval.id).status == Approval.Status.APPROVED

    def test_users_without_a_role_get_not_found(self) -> None:
        approval = make_approval()
        self.login("outsider")
        assert self.client.get(reverse("approvals:detail", args=[approval.id])).status_code == 404
        self.assertNotContains(self.client.get(reverse("approvals:inbox")), "ws-connect")

    def test_every_page_keeps_the_nav_count_live_and_the_inbox_also_asks_for_rows(self) -> None:
        approval = make_approval()
        self.login("operator")
        detail = self.client.get(reverse("approvals:detail", args=[approval.id]))
        self.assertContains(detail, 'ws-connect="/ws/approvals/?since=', count=1)
        inbox = self.client.get(reverse("approvals:inbox"))
        self.assertContains(inbox, 'ws-connect="/ws/approvals/?rows=1&amp;since=', count=1)
        self.assertNotContains(inbox, 'ws-connect="/ws/approvals/?since=')

    def test_approving_over_htmx_returns_the_outcome_and_the_next_approval(self) -> None:
        approval = make_approval()
        waiting = make_approval(value="next one?")
        self.login("reviewer")
        response = self.post_decision(approval, {"d-0-type": "approve", "comment": "fine"}, **HTMX)
        assert response.status_code == 200
        self.assertTemplateUsed(response, "approvals/partials/decision.html")
        self.assertContains(response, "Approved by you")
        self.assertContains(response, "resumed")
        self.assertContains(response, reverse("approvals:detail", args=[waiting.id]))
        assert Approval.objects.get(id=approval.id).status == Approval.Status.APPROVED

    def test_without_javascript_a_decision_redirects_back_to_the_page(self) -> None:
        approval = make_approval(value="ok?")
        self.login("reviewer")
        response = self.post_decision(approval, {"d-0-type": "reject", "comment": "not now"})
        assert response.status_code == 302
        page = self.client.get(response["Location"])
        self.assertContains(page, "Rejected by you")
        self.assertContains(page, "“not now”")
        assert Approval.objects.get(id=approval.id).resume_value == {
            "type": "reject", "message": "not now", "by": "rita", "comment": "not now"}

    def test_an_edit_from_the_typed_form_sends_the_new_arguments(self) -> None:
        approval = make_approval(value=with_schema(TOOL_SCHEMA))
        self.login("reviewer")
        page = self.client.get(reverse("approvals:detail", args=[approval.id]))
        self.assertContains(page, 'name="d-0-arg-to"')
        self.assertNotContains(page, 'name="d-0-args"')
        response = self.post_decision(approval, {
            "d-0-type": "edit", "d-0-arg-to": "bob@example.com", "d-0-arg-subject": "Q3 report",
            "d-0-arg-body": "Numbers attached.\nBest, Rita"}, **HTMX)
        self.assertContains(response, "Edited by you")
        self.assertContains(response, "bob@example.com")
        assert Approval.objects.get(id=approval.id).resume_value == {"decisions": [{"type": "edit", "edited_action": {
            "name": "send_email",
            "args": {"to": "bob@example.com", "subject": "Q3 report", "body": "Numbers attached.\nBest, Rita"}}}]}

    def test_without_a_schema_the_arguments_are_edited_as_one_json_object(self) -> None:
        # LangChain's batched middleware sends no schema: a type can change and an argument can be added.
        approval = make_approval()
        self.login("reviewer")
        page = self.client.get(reverse("approvals:detail", args=[approval.id]))
        form = page.context["form"]
        assert [e.name for e in form.cards[0].edit_fields] == ["d-0-args"]
        assert json.loads(form["d-0-args"].initial) == HITL_VALUE["action_requests"][0]["args"]
        self.assertContains(page, "&quot;to&quot;: &quot;alice@example.com&quot;")
        self.assertContains(page, "Arguments (JSON)")
        edited = {"to": "bob@example.com", "subject": "Q3 report", "body": "Numbers attached.", "copies": 3}
        response = self.post_decision(approval, {"d-0-type": "edit", "d-0-args": json.dumps(edited)}, **HTMX)
        assert response.status_code == 200
        self.assertContains(response, "Edited by you")
        assert Approval.objects.get(id=approval.id).resume_value == {"decisions": [{"type": "edit", "edited_action": {
            "name": "send_email", "args": edited}}]}

    def test_a_json_edit_that_is_not_an_object_comes_back_with_the_message_next_to_the_field(self) -> None:
        approval = make_approval()
        self.login("reviewer")
        for text, message in (
            ('{"to": "bob@example.com",}', "Not valid JSON: Expecting property name enclosed in double quotes "
                                           "(line 1, column 26)."),
            ('["bob@example.com"]', "The arguments must be a JSON object ({…})."),
            ("", "Give the arguments as a JSON object, e.g. {}."),
        ):
            response = self.post_decision(approval, {"d-0-type": "edit", "d-0-args": text}, **HTMX)
            assert response.status_code == 422, text
            assert response.context["form"].errors["d-0-args"] == [message]
            self.assertContains(response, '<details class="edit-panel" id="edit-0" open>', status_code=422)
            self.assertContains(response, message, status_code=422)
        # Approve does not look at the editor at all.
        response = self.post_decision(approval, {"d-0-type": "approve", "d-0-args": "[1"}, **HTMX)
        assert response.status_code == 200
        assert Approval.objects.get(id=approval.id).status == Approval.Status.APPROVED

    def test_bad_edits_come_back_with_the_message_next_to_the_field_and_nothing_saved(self) -> None:
        approval = make_approval(value=with_schema(EMAIL_SCHEMA))
        self.login("reviewer")
        response = self.post_decision(approval, {
            "d-0-type": "edit", "d-0-arg-to": "nobody", "d-0-arg-subject": "", "d-0-arg-body": "b",
            "d-0-arg-copies": "many"}, **HTMX)
        assert response.status_code == 422
        form = response.context["form"]
        assert form.errors["d-0-arg-subject"] == ["This field is required."]
        assert form.errors["d-0-arg-copies"] == ["Enter a whole number."]
        self.assertContains(response, "Enter a whole number.", status_code=422)
        self.assertContains(response, '<details class="edit-panel" id="edit-0" open>', status_code=422)
        # Valid types, but the schema refuses the address: the service's message, by the field.
        response = self.post_decision(approval, {
            "d-0-type": "edit", "d-0-arg-to": "nobody", "d-0-arg-subject": "s", "d-0-arg-body": "b"}, **HTMX)
        assert response.status_code == 422
        assert response.context["form"].errors["d-0-arg-to"] == ["Not a valid email."]
        assert Approval.objects.get(id=approval.id).is_pending
        assert not AuditEntry.objects.exists()

    def test_a_respond_without_a_message_is_refused_by_the_message_box(self) -> None:
        approval = make_approval(value="ok?")
        self.login("reviewer")
        response = self.post_decision(approval, {"d-0-type": "respond", "comment": ""}, **HTMX)
        assert response.status_code == 422
        assert response.context["form"].errors["comment"] == ["Write the answer to send back to the agent."]

    def test_the_reviewer_who_lost_the_race_is_told_who_decided_and_what_not_an_error(self) -> None:
        approval = make_approval(value="ok?")
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_decide(approval_id=approval.id, user=self.users["admin"],
                                     decisions=[{"type": "reject", "message": "no"}])
        self.login("reviewer")
        response = self.post_decision(approval, {"d-0-type": "approve"}, **HTMX)
        assert response.status_code == 200
        self.assertContains(response, "Alice decided first")
        self.assertContains(response, "rejected")
        assert Approval.objects.get(id=approval.id).decided_by == self.users["admin"]

    def test_the_same_reviewer_deciding_again_in_a_second_tab_is_told_it_was_not_applied(self) -> None:
        approval = make_approval(value="ok?")
        self.login("reviewer")
        first = self.post_decision(approval, {"d-0-type": "approve"}, **HTMX)  # tab 1
        assert first.status_code == 200
        second = self.post_decision(approval, {"d-0-type": "reject", "d-0-message": "no"}, **HTMX)  # tab 2
        assert second.status_code == 200
        self.assertContains(second, "You had already decided this")
        self.assertContains(second, "What you just sent was not applied.")
        assert Approval.objects.get(id=approval.id).status == Approval.Status.APPROVED
        # Without JavaScript: the same, as a message on the page it lands on.
        third = self.post_decision(approval, {"d-0-type": "reject", "d-0-message": "no"}, follow=True)
        self.assertContains(third, "what you just sent was not applied")
        assert AuditEntry.objects.filter(approval_id=approval.id).count() == 1

    def test_high_stakes_comes_from_the_payload_or_the_graphs_setting(self) -> None:
        flagged = make_approval(value={"action_requests": [{"name": "drop_table", "args": {}, "high_stakes": True}],
                                       "review_configs": [{"action_name": "drop_table",
                                                           "allowed_decisions": ["approve", "reject"]}]})
        plain = make_approval(value="ok?")
        assert flagged.is_high_stakes and not plain.is_high_stakes
        with self.settings(LOOPGATE_HIGH_STAKES_GRAPHS=[plain.execution.graph_name]):
            assert Approval.objects.get(id=plain.id).is_high_stakes
        self.login("reviewer")
        self.assertContains(self.client.get(reverse("approvals:detail", args=[flagged.id])), 'data-high-stakes="1"')
        self.assertNotContains(self.client.get(reverse("approvals:detail", args=[plain.id])), "data-high-stakes")

    def test_an_argument_the_schema_fixes_is_shown_read_only_and_cannot_be_edited(self) -> None:
        schema = {"type": "object", "properties": {"cluster": {"const": "prod-eu-1"}, "grace": {"type": "integer"}},
                  "required": ["cluster"]}
        value = {"action_requests": [{"name": "shutdown_cluster", "args": {"cluster": "prod-eu-1", "grace": 5}}],
                 "review_configs": [{"action_name": "shutdown_cluster", "allowed_decisions": ["approve", "edit"],
                                     "args_schema": schema}]}
        approval = make_approval(value=value)
        self.login("reviewer")
        page = self.client.get(reverse("approvals:detail", args=[approval.id])).content.decode()
        field = re.search(r'<input[^>]*name="d-0-arg-cluster"[^>]*>', page)
        assert field is not None and "disabled" in field.group(0) and 'value="prod-eu-1"' in field.group(0)
        assert "Fixed by the tool" in page
        assert not re.search(r'<textarea[^>]*name="d-0-arg-cluster"', page)  # no JSON box with quotes
        response = self.post_decision(approval, {"d-0-type": "edit", "d-0-arg-cluster": "prod-us-1",
                                                 "d-0-arg-grace": "30"}, **HTMX)
        assert response.status_code == 200
        decided = Approval.objects.get(id=approval.id)
        assert decided.status == Approval.Status.EDITED
        assert decided.decision[0]["args"] == {"cluster": "prod-eu-1", "grace": 30}

    def test_an_edit_of_a_plain_request_with_a_schema_sends_only_the_arguments_the_schema_names(self) -> None:
        """The FinOps request: context keys (owner, region, cost) beside the schema's arguments."""
        schema = {"type": "object", "properties": {"cluster": {"const": "dev-1"}, "grace": {"type": "integer"}},
                  "required": ["cluster", "grace"]}
        approval = make_approval(value={"action": "shutdown_cluster", "cluster": "dev-1", "owner": "maria",
                                        "region": "eu-west-1", "grace": 30, "allowed_decisions": ["approve", "edit"],
                                        "args_schema": schema})
        self.login("reviewer")
        response = self.post_decision(approval, {"d-0-type": "edit", "d-0-arg-grace": "5"}, **HTMX)
        assert response.status_code == 200
        decided = Approval.objects.get(id=approval.id)
        assert decided.status == Approval.Status.EDITED
        assert decided.resume_value["args"] == {"cluster": "dev-1", "grace": 5}

    def test_several_actions_are_decided_each_with_its_own_choice(self) -> None:
        value = {"action_requests": [HITL_VALUE["action_requests"][0],
                                     {"name": "delete_file", "args": {"path": "/tmp/report.pdf"}}],
                 "review_configs": [HITL_VALUE["review_configs"][0],
                                    {"action_name": "delete_file", "allowed_decisions": ["approve", "reject"]}]}
        approval = make_approval(value=value)
        self.login("reviewer")
        page = self.client.get(reverse("approvals:detail", args=[approval.id]))
        self.assertContains(page, 'name="d-1-type"')
        self.assertContains(page, "Submit decisions")
        self.assertContains(page, 'name="all" value="approve"')
        response = self.post_decision(approval, {"d-0-type": "approve", "d-1-type": "reject",
                                                 "d-1-message": "Keep the report."}, **HTMX)
        assert response.status_code == 200
        assert Approval.objects.get(id=approval.id).resume_value == {"decisions": [
            {"type": "approve"}, {"type": "reject", "message": "Keep the report."}]}

    def test_untrusted_payload_text_is_always_escaped(self) -> None:
        approval = make_approval(value={
            "action_requests": [{"name": HOSTILE, "args": {HOSTILE: HOSTILE}, "description": HOSTILE}],
            "review_configs": [{"action_name": HOSTILE, "allowed_decisions": ["approve", "edit"]}]})
        self.login("reviewer")
        for url in (reverse("approvals:detail", args=[approval.id]), reverse("approvals:inbox")):
            response = self.client.get(url)
            assert HOSTILE not in response.content.decode(), url
            self.assertContains(response, "&lt;script&gt;")


class AuditViewTests(ApprovalViewTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mail = make_approval()
        self.fin = make_approval(value="=1+1", graph_name="finops")
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_decide(approval_id=self.mail.id, user=self.users["reviewer"],
                                     decisions=[{"type": "approve"}], comment="ok")
            services.approval_decide(approval_id=self.fin.id, user=self.users["admin"],
                                     decisions=[{"type": "reject"}], comment="=HYPERLINK(\"x\")")

    def test_a_long_comment_is_clamped_with_show_more_and_wraps(self) -> None:
        long = make_approval(value="ok?")
        comment = "x" * 5_000  # unbroken: it must wrap, not overflow its card
        with self.captureOnCommitCallbacks(execute=True):
            services.approval_decide(approval_id=long.id, user=self.users["reviewer"],
                                     decisions=[{"type": "approve"}], comment=comment)
        self.login("operator")
        html = self.client.get(reverse("approvals:audit")).content.decode()
        assert '<details class="long-text">' in html and "show more" in html
        assert html.count(comment) == 1  # the whole text once, behind "show more"; the row shows its start
        self.login("reviewer")
        page = self.client.get(reverse("approvals:detail", args=[long.id])).content.decode()
        assert '<div class="outcome-comment">' in page and "show more" in page
        short = self.client.get(reverse("approvals:audit")).content.decode()
        assert '<span class="long-text">ok</span>' in short  # a short comment stays as it is

    def test_every_decision_is_listed_with_who_what_and_where(self) -> None:
        self.login("operator")
        response = self.client.get(reverse("approvals:audit"))
        assert [e.approval_id for e in response.context["entries"]] == [self.fin.id, self.mail.id]
        self.assertContains(response, "send_email")
        self.assertContains(response, "Export CSV")

    def test_filters_by_user_graph_and_date(self) -> None:
        self.login("reviewer")
        url = reverse("approvals:audit")
        assert [e.who for e in self.client.get(url, {"user": "rita"}).context["entries"]] == ["rita"]
        assert [e.graph_name for e in self.client.get(url, {"graph": "finops"}).context["entries"]] == ["finops"]
        assert list(self.client.get(url, {"date_from": "2999-01-01"}).context["entries"]) == []
        assert len(self.client.get(url, {"date_to": "2999-01-01"}).context["entries"]) == 2

    def test_the_csv_export_has_every_row_and_defuses_formulas(self) -> None:
        self.login("reviewer")
        response = self.client.get(reverse("approvals:audit"), {"export": "csv", "graph": "finops"})
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert [(r["who"], r["outcome"], r["graph"]) for r in rows] == [("alice", "rejected", "finops")]
        assert rows[0]["comment"] == "'=HYPERLINK(\"x\")"

    def test_budget_changes_are_in_the_log_and_its_csv_too(self) -> None:
        from orchestrator import budgets

        with self.captureOnCommitCallbacks(execute=True):  # the Budgets page's own service
            budgets.graph_budget_set(user=self.users["admin"], graph_name="finops", token_budget=50_000,
                                     daily_token_limit=None)
        self.login("operator")
        response = self.client.get(reverse("approvals:audit"), {"graph": "finops"})
        assert [e.kind for e in response.context["entries"]] == ["budget", "decision"]
        self.assertContains(response, "→ 50,000")
        response = self.client.get(reverse("approvals:audit"), {"export": "csv", "user": "alice"})
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert [(r["kind"], r["who"], r["graph"]) for r in rows] == [("budget", "alice", "finops"),
                                                                    ("decision", "alice", "finops")]
        budget = rows[0]
        assert budget["outcome"] == "changed" and budget["comment"].endswith("→ 50,000")
        assert json.loads(budget["detail"])["new"] == 50_000
