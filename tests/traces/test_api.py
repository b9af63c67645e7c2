"""Steps, spans and forks through the API, without a worker: reads, and the errors of a fork."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.utils import timezone

from orchestrator.models import Execution
from tests.base import ApiTestCase, fields_of
from traces.models import Span, Step
from tests.factories import fixture_execution, fixture_llm_call


def recorded(users: Any) -> Execution:
    execution = fixture_execution(graph_name="finops", status="succeeded", created_by=users["operator"])
    t0 = timezone.now()
    for step, node in ((2, "diagnose"), (1, "monitor")):
        Step.objects.create(execution=execution, step=step, nodes=[node], checkpoint_id=f"cp-{step}",
                            update={node: {"n": step}}, diff=[{"op": "add", "path": node}], tokens=step * 10,
                            started_at=t0, finished_at=t0 + datetime.timedelta(milliseconds=250))
    Span.objects.create(execution=execution, kind="node", name="monitor", step=1, started_at=t0, ended_at=t0)
    fixture_llm_call(execution=execution, name="chat", model="loopgate-offline", input_tokens=7,
                        output_tokens=3, started_at=t0 + datetime.timedelta(seconds=1))
    return execution


class StepAndSpanApiTests(ApiTestCase):
    def test_steps_come_in_order_with_their_update_diff_and_timing(self) -> None:
        execution = recorded(self.users)
        body = self.api("reviewer").get(f"/api/v1/executions/{execution.id}/steps/").json()
        assert [s["step"] for s in body["results"]] == [1, 2]
        first = body["results"][0]
        assert first["node"] == "monitor" and first["checkpoint_id"] == "cp-1"
        assert first["update"] == {"monitor": {"n": 1}} and first["diff"] == [{"op": "add", "path": "monitor"}]
        assert first["duration_ms"] == 250 and first["tokens"] == 10

    def test_spans_with_their_tokens_filtered_by_kind(self) -> None:
        execution = recorded(self.users)
        body = self.api("operator").get(f"/api/v1/executions/{execution.id}/spans/").json()
        assert [s["kind"] for s in body["results"]] == ["node", "llm"]
        [llm] = self.api("operator").get(f"/api/v1/executions/{execution.id}/spans/?kind=llm").json()["results"]
        assert llm["total_tokens"] == 10 and llm["ended_at"] is None and llm["duration_ms"] is None
        assert self.api("operator").get(f"/api/v1/executions/{execution.id}/spans/?kind=x").status_code == 400

    def test_an_unknown_execution_is_a_404_and_an_outsider_sees_none(self) -> None:
        execution = recorded(self.users)
        assert self.api("reviewer").get(f"/api/v1/executions/{uuid.uuid4()}/steps/").status_code == 404
        assert self.api("outsider").get(f"/api/v1/executions/{execution.id}/spans/").status_code == 404


class ExecutionForkApiTests(ApiTestCase):
    def test_a_reviewer_may_not_fork(self) -> None:
        execution = recorded(self.users)
        response = self.api("reviewer").post(f"/api/v1/executions/{execution.id}/fork/", {"checkpoint_id": "cp-1"},
                                             format="json")
        assert response.status_code == 403
        assert Execution.objects.count() == 1

    def test_a_checkpoint_not_in_the_thread_is_a_400_naming_it(self) -> None:
        execution = recorded(self.users)
        response = self.api("operator").post(f"/api/v1/executions/{execution.id}/fork/", {"checkpoint_id": "cp-1"},
                                             format="json")
        assert response.status_code == 400
        assert "checkpoint_id" in fields_of(response), response.json()
        assert Execution.objects.count() == 1

    def test_bad_bodies_are_400s_and_unknown_executions_404s(self) -> None:
        execution = recorded(self.users)
        url = f"/api/v1/executions/{execution.id}/fork/"
        for body, field in (({}, "checkpoint_id"), ({"checkpoint_id": 5}, "checkpoint_id"),
                            ({"checkpoint_id": "cp-1", "state": [1]}, "state")):
            response = self.api("operator").post(url, body, format="json")
            assert response.status_code == 400 and field in fields_of(response), body
        response = self.api("operator").post(f"/api/v1/executions/{uuid.uuid4()}/fork/", {"checkpoint_id": "cp-1"},
                                             format="json")
        assert response.status_code == 404
