"""A self-referencing ``$ref`` in a tool's argument schema (accepted by ``check_schema``) neither hangs the
approval page nor makes deciding it a 500: references are followed in one place
(orchestrator/json_schema.py, the ``referencing`` library) with loops stopped (issue 19)."""

from __future__ import annotations

import signal
from typing import Any

from django.urls import reverse

from approvals.models import Approval
from tests.approvals.factories import make_approval
from tests.approvals.test_views import HTMX, ApprovalViewTestCase

SELF_REFERENCING = {"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}}
ESCAPED = {"type": "object", "$defs": {"a/b": {"type": "integer"}, "c~d": {"type": "string"}},
           "properties": {"n": {"$ref": "#/$defs/a~1b"}, "s": {"$ref": "#/$defs/c~0d"}}}


def hitl(schema: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    return {"action_requests": [{"name": "tool", "args": args}],
            "review_configs": [{"action_name": "tool", "allowed_decisions": ["approve", "edit", "reject"],
                                "args_schema": schema}]}


class SchemaRefTests(ApprovalViewTestCase):
    def within(self, seconds: int, call: Any) -> Any:
        """``call()``, failing (instead of hanging the suite) when it does not return in time."""
        def too_long(*_: Any) -> None:
            raise TimeoutError(f"still running after {seconds} s")

        previous = signal.signal(signal.SIGALRM, too_long)
        signal.alarm(seconds)
        try:
            return call()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    def test_a_self_referencing_schema_opens_and_decides_without_hanging(self) -> None:
        approval = make_approval(value=hitl(SELF_REFERENCING, {"a": 1}))
        self.login("reviewer")
        page = self.within(20, lambda: self.client.get(reverse("approvals:detail", args=[approval.id])))
        assert page.status_code == 200
        response = self.within(20, lambda: self.post_decision(
            approval, {"d-0-type": "edit", "d-0-args": '{"a": 2}'}, **HTMX))
        assert response.status_code in (200, 422)
        assert Approval.objects.get(id=approval.id).status in (Approval.Status.PENDING, Approval.Status.EDITED)

    def test_json_pointer_escapes_are_followed(self) -> None:
        from approvals import payloads

        assert payloads.validate_args({"n": 1, "s": "x"}, ESCAPED) == {}
        assert payloads.validate_args({"n": "one", "s": "x"}, ESCAPED) == {"n": ["Must be an integer."]}
