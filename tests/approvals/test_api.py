"""The approvals API where it meets the approvals rules: edits without a schema, four eyes."""

from __future__ import annotations

from unittest import mock

from django.test import override_settings

from approvals.models import Approval
from tests.approvals.factories import make_approval, make_execution
from tests.base import ApiTestCase

RESIZE = {
    "action_requests": [{"name": "resize", "args": {"size": "3", "zone": "eu"}}],
    "review_configs": [{"action_name": "resize", "allowed_decisions": ["approve", "edit", "reject"]}],
}


class ApprovalDecideApiTests(ApiTestCase):
    def setUp(self) -> None:
        super().setUp()
        for target in ("orchestrator.tasks.advance.delay", "approvals.tasks.notify_created.delay"):
            patcher = mock.patch(target)
            patcher.start()
            self.addCleanup(patcher.stop)

    def post(self, role: str, approval: Approval, body: dict):  # type: ignore[no-untyped-def]
        with self.captureOnCommitCallbacks(execute=True):
            return self.api(role).post(f"/api/v1/approvals/{approval.id}/decide/", body, format="json")

    def test_without_a_schema_an_edit_may_change_a_type_and_add_an_argument(self) -> None:
        approval = make_approval(value=RESIZE)
        response = self.post("reviewer", approval, {"decisions": [{"type": "edit", "args": ["size"]}]})
        assert response.status_code == 400
        assert list(response.json()["extra"]["fields"]) == ["decisions.0.args"]
        edited = {"size": 3, "zone": "eu", "dry_run": True}
        response = self.post("reviewer", approval, {"decisions": [{"type": "edit", "args": edited}]})
        assert response.status_code == 200, response.json()
        assert Approval.objects.get(id=approval.id).resume_value == {
            "decisions": [{"type": "edit", "edited_action": {"name": "resize", "args": edited}}]}

    @override_settings(LOOPGATE_FOUR_EYES_GRAPHS=["t_mail"])
    def test_four_eyes_the_reviewer_who_started_the_execution_gets_403(self) -> None:
        approval = make_approval(execution=make_execution(created_by=self.users["reviewer"]))
        response = self.post("reviewer", approval, {"decisions": [{"type": "approve"}]})
        assert response.status_code == 403
        assert "Four eyes" in response.json()["message"]
        assert Approval.objects.get(id=approval.id).is_pending
        response = self.post("admin", approval, {"decisions": [{"type": "approve"}]})
        assert response.status_code == 200, response.json()
