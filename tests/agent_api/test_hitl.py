"""Interrupts of runs started through the SDK are approvals in the inbox; a resume through the SDK
is a decision checked as the inbox checks it; roles as everywhere else."""

from __future__ import annotations

import httpx
import pytest
from django.test import Client
from langgraph_sdk.errors import APIStatusError

from approvals.models import Approval
from orchestrator.models.audit import AuditEntry
from orchestrator.models import Execution
from tests.services import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def refused(call, *args, **kwargs) -> tuple[int, str]:
    """The status and body of a refused SDK call (``runs.wait`` raises httpx's error, the rest the SDK's)."""
    try:
        call(*args, **kwargs)
    except APIStatusError as error:
        return error.status_code, str(error.body)
    except httpx.HTTPStatusError as error:  # the SDK adds the body as a note
        return error.response.status_code, " ".join(getattr(error, "__notes__", []))
    raise AssertionError("the call was not refused")


def _interrupted(lg, topic: str = "bees") -> tuple[str, str, Approval]:
    operator = lg.sync("operator")
    tid = operator.threads.create()["thread_id"]
    run = operator.runs.create(tid, "lg_review", input={"topic": topic})
    wait_for(lambda: operator.runs.get(tid, run["run_id"])["status"] == "interrupted", timeout=60,
             what="the run to wait for review")
    approval = Approval.objects.get(execution_id=run["run_id"], status="pending")
    return tid, run["run_id"], approval


class InboxTests:
    def test_an_interrupt_is_in_the_inbox_and_deciding_there_resumes_the_run(self, lg) -> None:
        tid, run_id, approval = _interrupted(lg)
        inbox = Client()
        inbox.force_login(lg.users["reviewer"])
        assert approval.id.hex[:8] in inbox.get("/approvals/").content.decode()  # listed in the inbox

        answer = inbox.post(f"/approvals/{approval.id}/decide/", {"d-0-type": "edit", "d-0-arg-draft": "Bees!"})
        assert answer.status_code == 302, answer.content.decode()[:2000]

        final = lg.sync("operator").runs.join(tid, run_id)
        assert final == {"topic": "bees", "draft": "Bees!", "decision": "edit", "published": True,
                         "log": ["write", "review", "publish"]}
        assert lg.sync("operator").runs.get(tid, run_id)["status"] == "success"
        assert lg.sync("operator").threads.get(tid)["status"] == "idle"

    def test_a_resume_through_the_sdk_leaves_nothing_pending_and_records_its_user(self, lg) -> None:
        tid, run_id, approval = _interrupted(lg)
        admin = lg.sync("admin")
        final = admin.runs.wait(tid, "lg_review", command={"resume": {"type": "reject", "message": "not today"}})
        assert final["decision"] == "reject" and final["published"] is False
        approval.refresh_from_db()
        assert approval.status == "rejected" and approval.decided_by.username == "alice"
        assert approval.resume_value == {"type": "reject", "message": "not today", "by": "alice"}
        assert not Approval.objects.filter(execution_id=run_id, status="pending").exists()
        entry = AuditEntry.objects.get(approval_id=approval.id)
        assert (entry.actor_name, entry.outcome, entry.kind) == ("alice", "rejected", "decision")

    def test_a_resume_by_interrupt_id_answers_that_interrupt(self, lg) -> None:
        tid, run_id, approval = _interrupted(lg)
        state = lg.sync("reviewer").threads.get_state(tid)
        interrupt_id = state["interrupts"][0]["id"]
        assert interrupt_id == approval.interrupt_id
        final = lg.sync("reviewer").runs.wait(tid, "lg_review", command={"resume": {interrupt_id: {"type": "approve"}}})
        assert final["published"] is True


class ResumeRefusalTests:
    def test_an_operators_resume_is_403_and_changes_nothing(self, lg) -> None:
        tid, run_id, approval = _interrupted(lg)
        status, body = refused(lg.sync("operator").runs.wait, tid, "lg_review", command={"resume": {"type": "approve"}})
        assert status == 403 and "reviewers" in body
        approval.refresh_from_db()
        assert approval.status == "pending"
        assert Execution.objects.get(id=run_id).status == "interrupted"

    def test_an_invalid_resume_is_422_naming_the_problem_and_stores_nothing(self, lg) -> None:
        tid, run_id, approval = _interrupted(lg)
        reviewer = lg.sync("reviewer")
        bad = [
            ("yes", "reviewer's decision"),                                   # not a decision at all
            ({"type": "respond"}, "Respond is not allowed"),                  # not allowed by the payload
            ({"type": "edit", "args": {"draft": 3}}, "command.resume.0.args.draft"),  # against args_schema
            ({"type": "edit", "args": {"draft": "x"}}, "command.resume.0.args.draft"),  # minLength
        ]
        for value, words in bad:
            status, body = refused(reviewer.runs.wait, tid, "lg_review", command={"resume": value})
            assert status == 422 and words in body, (value, body)
        approval.refresh_from_db()
        assert approval.status == "pending" and approval.decision is None
        assert not AuditEntry.objects.filter(approval_id=approval.id).exists()
        assert Execution.objects.get(id=run_id).status == "interrupted"

    def test_resuming_a_thread_where_nothing_waits_is_409(self, lg) -> None:
        tid = lg.sync("operator").threads.create()["thread_id"]
        status, _ = refused(lg.sync("reviewer").runs.wait, tid, "lg_review", command={"resume": {"type": "approve"}})
        assert status == 409

    def test_a_run_without_input_on_a_thread_waiting_for_review_is_409(self, lg) -> None:
        tid, run_id, approval = _interrupted(lg)
        status, body = refused(lg.sync("operator").runs.create, tid, "lg_review", input=None)
        assert status == 409 and "waits for review" in body
        approval.refresh_from_db()
        assert approval.status == "pending"


class BreakpointTests:
    def test_a_runs_own_breakpoint_waits_in_the_inbox_and_a_reviewers_resume_continues_it(self, lg) -> None:
        operator, reviewer = lg.sync("operator"), lg.sync("reviewer")
        tid = operator.threads.create()["thread_id"]
        out = operator.runs.wait(tid, "lg_echo", input={"text": "b"}, interrupt_before=["count"])
        assert out == {"text": "B", "steps": ["shout"]}
        assert operator.threads.get(tid)["status"] == "interrupted"
        run_id = operator.runs.list(tid)[0]["run_id"]
        held = Approval.objects.get(execution_id=run_id, status="pending")
        assert held.node == "count" and held.format == "breakpoint"
        # Going on without an answer would skip the person the breakpoint waits for.
        status, _ = refused(operator.runs.wait, tid, "lg_echo", input=None)
        assert status == 409
        assert reviewer.runs.wait(tid, "lg_echo", command={"resume": {"type": "approve"}}) == {
            "text": "B", "steps": ["shout", "count:1"]}
        held.refresh_from_db()
        assert held.status == "approved" and held.decided_by.username == "rita"
