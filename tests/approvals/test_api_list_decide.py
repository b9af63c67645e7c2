"""Approvals through the API: list and filter, decide (200 / 400 / 403 / 409), an edit of a HITL action."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from approvals import services
from approvals.models import Approval
from orchestrator.models import Execution
from tests.base import ApiTestCase, fields_of
from tests.factories import fixture_execution

_ids = itertools.count(1)

PLAIN = {"action": "shutdown_cluster", "cluster": "dev-analytics-2", "description": "Shut it down?"}
HITL = {
    "action_requests": [{"name": "send_email", "args": {"to": "alice@example.com", "subject": "Q3"},
                         "description": "Send it?"}],
    "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}],
}


def waiting(value: Any, *, graph: str = "finops", created_by: Any = None) -> Approval:
    """An execution waiting on one approval, as the runner leaves it (no worker needed)."""
    execution = fixture_execution(graph_name=graph, graph_version="abc123def456",
                                         status=Execution.Status.INTERRUPTED, created_by=created_by)
    [approval] = services.approval_create_for_interrupts(
        execution_id=execution.id,
        interrupts=[{"id": f"i-{next(_ids)}", "value": value, "node": "review", "checkpoint_id": "cp",
                     "checkpoint_ns": "", "response_schema": None}],
    )
    return approval


class ApprovalListApiTests(ApiTestCase):
    def test_every_role_reads_approvals_with_their_actions(self) -> None:
        approval = waiting(PLAIN)
        for role in ("admin", "reviewer", "operator"):
            body = self.api(role).get("/api/v1/approvals/").json()
            assert body["count"] == 1, role
        [row] = body["results"]
        assert row["id"] == str(approval.id) and row["execution"] == str(approval.execution_id)
        assert row["status"] == "pending" and row["format"] == "plain" and row["graph"] == "finops"
        [action] = row["actions"]
        assert action["name"] == "shutdown_cluster"
        assert action["allowed_decisions"] == ["approve", "reject", "respond"]
        assert row["decided_by"] is None and row["decision"] is None
        assert self.api("outsider").get("/api/v1/approvals/").json()["count"] == 0

    def test_one_approval_is_served_at_its_own_address(self) -> None:
        approval = waiting(PLAIN)
        response = self.api("reviewer").get(f"/api/v1/approvals/{approval.id}/")
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == str(approval.id) and body["status"] == "pending"
        assert body["actions"][0]["name"] == "shutdown_cluster"
        listed = self.api("reviewer").get("/api/v1/approvals/").json()["results"][0]
        assert body == listed  # the same shape as in the list
        assert self.api("outsider").get(f"/api/v1/approvals/{approval.id}/").status_code == 404
        missing = self.api("reviewer").get("/api/v1/approvals/00000000-0000-0000-0000-000000000000/")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"

    def test_the_api_root_lists_what_it_serves(self) -> None:
        body = self.api("reviewer").get("/api/v1/").json()
        assert set(body["resources"]) == {"graphs", "executions", "approvals", "budgets"}
        assert body["resources"]["approvals"].endswith("/api/v1/approvals/")
        assert body["docs"].endswith("/api/docs/")

    def test_filters_by_status_graph_and_execution(self) -> None:
        a = waiting(PLAIN, graph="finops")
        b = waiting(HITL, graph="mailer")
        Approval.objects.filter(id=b.id).update(status=Approval.Status.APPROVED)

        def ids(query: str) -> set[str]:
            response = self.api("reviewer").get(f"/api/v1/approvals/{query}")
            assert response.status_code == 200, response.json()
            return {row["id"] for row in response.json()["results"]}

        assert ids("") == {str(a.id), str(b.id)}
        assert ids("?status=pending") == {str(a.id)}
        assert ids("?graph=mailer") == {str(b.id)}
        assert ids(f"?execution={a.execution_id}") == {str(a.id)}
        for bad in ("?status=maybe", "?execution=12", "?graph="):
            response = self.api("reviewer").get(f"/api/v1/approvals/{bad}")
            assert response.status_code == 400, bad
            assert fields_of(response), bad


class ApprovalDecideApiTests(ApiTestCase):
    def test_an_operator_deciding_gets_403_and_nothing_changes(self) -> None:
        approval = waiting(PLAIN)
        response = self.api("operator").post(f"/api/v1/approvals/{approval.id}/decide/",
                                             {"decisions": [{"type": "approve"}]}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        approval.refresh_from_db()
        assert approval.status == Approval.Status.PENDING and approval.decided_by is None

    def test_a_reviewer_approves_and_the_execution_is_queued_again(self) -> None:
        approval = waiting(PLAIN)
        response = self.api("reviewer").post(f"/api/v1/approvals/{approval.id}/decide/",
                                             {"decisions": [{"type": "approve"}], "comment": "go"}, format="json")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["status"] == "approved" and body["decided_by"] == "rita" and body["decided_at"]
        assert body["decision"] == [{"type": "approve"}] and body["comment"] == "go"
        assert Execution.objects.get(id=approval.execution_id).status == Execution.Status.QUEUED

    def test_deciding_twice_is_a_409_saying_by_whom(self) -> None:
        approval = waiting(PLAIN)
        self.api("reviewer").post(f"/api/v1/approvals/{approval.id}/decide/", {"decisions": [{"type": "approve"}]},
                                  format="json")
        response = self.api("admin").post(f"/api/v1/approvals/{approval.id}/decide/",
                                          {"decisions": [{"type": "reject", "message": "no"}]}, format="json")
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "already_decided" and "rita" in body["message"]
        assert body["extra"]["decided_by"] == "rita" and body["extra"]["status"] == "approved"

    def test_a_decision_the_action_does_not_allow_is_a_400_and_nothing_is_recorded(self) -> None:
        approval = waiting(PLAIN)
        for body, field in (
            ({"decisions": [{"type": "edit", "args": {"cluster": "x"}}]}, "decisions.0.type"),
            ({"decisions": [{"type": "respond"}]}, "decisions.0.message"),
            ({"decisions": [{"type": "approve"}, {"type": "approve"}]}, "decisions"),
            ({"decisions": [{"type": "launch"}]}, "decisions.0.type"),
            ({"decisions": "approve"}, "decisions"),
            ({}, "decisions"),
        ):
            response = self.api("reviewer").post(f"/api/v1/approvals/{approval.id}/decide/", body, format="json")
            assert response.status_code == 400, body
            assert field in fields_of(response), (body, response.json())
        approval.refresh_from_db()
        assert approval.status == Approval.Status.PENDING and approval.decision is None
        assert Execution.objects.get(id=approval.execution_id).status == Execution.Status.INTERRUPTED

    def test_an_edit_of_a_hitl_action_is_checked_against_its_arguments(self) -> None:
        approval = waiting(HITL, graph="mailer")
        url = f"/api/v1/approvals/{approval.id}/decide/"
        # No args_schema in the payload: any JSON object goes (approvals.payloads.ANY_OBJECT), nothing else.
        response = self.api("reviewer").post(url, {"decisions": [{"type": "edit", "args": ["bob@example.com"]}]},
                                             format="json")
        assert response.status_code == 400
        assert any(name.startswith("decisions.0.args") for name in fields_of(response)), response.json()

        edited = {"to": "bob@example.com", "subject": "Q3, corrected"}
        response = self.api("reviewer").post(url, {"decisions": [{"type": "edit", "args": edited}]}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == "edited"
        assert response.json()["decision"] == [{"type": "edit", "args": edited}]
        approval.refresh_from_db()
        assert approval.resume_value == {
            "decisions": [{"type": "edit", "edited_action": {"name": "send_email", "args": edited}}]
        }

    def test_an_unknown_approval_is_a_404(self) -> None:
        response = self.api("reviewer").post(f"/api/v1/approvals/{uuid.uuid4()}/decide/",
                                             {"decisions": [{"type": "approve"}]}, format="json")
        assert response.status_code == 404
