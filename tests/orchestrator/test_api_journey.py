"""Whole journeys through the API alone, on real services: Postgres, Redis and a Celery
worker process run the graphs; the test only ever speaks HTTP (the API's own test client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from tests.approvals.graphs import EMAIL
from tests.base import ApiTransactionTestCase
from tests.services import Proc, start_worker, wait_for

pytestmark = pytest.mark.slow
TIMEOUT = 90
FINISHED = {"succeeded", "failed", "cancelled", "budget_exceeded"}


@pytest.fixture(scope="module")
def worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Proc]:
    """One worker process for the module: every test's rows are committed, so it sees them."""
    with django_db_blocker.unblock():
        proc = start_worker("api", concurrency=2)
    yield proc
    proc.kill()


@pytest.fixture
def worker_log_on_failure(worker: Proc, request: Any) -> Iterator[None]:
    yield
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"--- worker ---\n{worker.output()}")


def poll(client: APIClient, execution_id: str, status: str) -> dict[str, Any]:
    """GET the execution until it has ``status``; fail at once if it ends otherwise."""
    def check() -> dict[str, Any] | None:
        body = client.get(f"/api/v1/executions/{execution_id}/").json()
        if body["status"] == status:
            return body
        if body["status"] in FINISHED:
            raise AssertionError(f"the execution ended {body['status']} instead of {status}: {body['error']}")
        return None

    return wait_for(check, timeout=TIMEOUT, interval=0.3, what=f"execution {execution_id} to be {status}")  # type: ignore[return-value]


def the_approval(client: APIClient, execution_id: str) -> dict[str, Any]:
    body = client.get(f"/api/v1/approvals/?execution={execution_id}&status=pending").json()
    assert body["count"] == 1, body
    return body["results"][0]


@pytest.mark.usefixtures("worker_log_on_failure")
class FinOpsJourneyTests(ApiTransactionTestCase):
    def test_start_wait_decide_read_the_trace_and_fork_from_a_middle_checkpoint(self) -> None:
        operator, reviewer = self.api("operator"), self.api("reviewer")

        # 1. Start: 202 at once, queued.
        response = operator.post("/api/v1/executions/", {"graph": "finops", "input": {"account": "acme-prod"}},
                                 format="json")
        assert response.status_code == 202, response.json()
        execution_id = response.json()["id"]
        assert response.json()["status"] == "queued"

        # 2. Poll until it waits for a person.
        body = poll(operator, execution_id, "interrupted")
        assert len(body["pending_approvals"]) == 1

        # 3. Its approval: a plain payload, the shutdown of the idle cluster.
        approval = the_approval(reviewer, execution_id)
        assert approval["id"] == body["pending_approvals"][0]
        assert approval["format"] == "plain" and approval["status"] == "pending"
        [action] = approval["actions"]
        assert action["name"] == "shutdown_cluster" and action["args"]["cluster"] == "dev-analytics-2"
        # The FinOps request opts in to Edit, with a schema that keeps the cluster fixed.
        assert action["allowed_decisions"] == ["approve", "edit", "reject", "respond"]
        url = f"/api/v1/approvals/{approval['id']}/decide/"
        edited = {"cluster": "dev-analytics-2", "snapshot_first": True, "grace_period_minutes": 5}
        response = reviewer.post(url, {"decisions": [{"type": "edit", "args": {**edited, "cluster": "dev-ml-3"}}]},
                                 format="json")
        assert response.status_code == 400, response.json()
        assert any(f.startswith("decisions.0.args") for f in response.json()["extra"]["fields"])
        # An operator may not decide.
        assert operator.post(url, {"decisions": [{"type": "approve"}]}, format="json").status_code == 403

        # 4. The reviewer decides with an edit; a second decision is a 409 naming the reviewer.
        response = reviewer.post(url, {"decisions": [{"type": "edit", "args": edited}],
                                       "comment": "idle since the load test; give people five minutes"},
                                 format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == "edited" and response.json()["decided_by"] == "rita"
        again = self.api("admin").post(url, {"decisions": [{"type": "reject"}]}, format="json")
        assert again.status_code == 409 and again.json()["extra"]["decided_by"] == "rita"

        # 5. Poll until it succeeded: the cluster was shut down.
        body = poll(operator, execution_id, "succeeded")
        assert body["state"]["outcome"] == "shut_down"
        [shutdown] = body["state"]["actions_taken"]
        assert shutdown["grace_period_minutes"] == 5 and shutdown["approved_by"] == "rita"  # the edit ran
        assert body["tokens_used"] > 0 and body["pending_approvals"] == []
        assert body["cost"] is not None and float(body["cost"]) > 0

        # 6. Its steps, in order, and its spans.
        steps = operator.get(f"/api/v1/executions/{execution_id}/steps/").json()["results"]
        nodes = [step["node"] for step in steps]
        for earlier, later in (("monitor", "diagnose"), ("diagnose", "communicate"), ("communicate", "act")):
            assert nodes.index(earlier) < nodes.index(later), nodes
        assert [s["step"] for s in steps] == sorted(s["step"] for s in steps)
        assert sum(s["tokens"] for s in steps) == body["tokens_used"]
        diagnose = next(s for s in steps if s["node"] == "diagnose")
        assert "cluster" in diagnose["update"]["diagnose"]
        spans = operator.get(f"/api/v1/executions/{execution_id}/spans/").json()["results"]
        llm = [s for s in spans if s["kind"] == "llm"]
        assert llm and llm[0]["total_tokens"] > 0 and llm[0]["model"]
        assert operator.get(f"/api/v1/executions/{execution_id}/spans/?kind=llm").json()["count"] == len(llm)

        # 7. Fork from the middle (after diagnose), with a shorter deadline: the fork runs
        #    on from there, asks again, and finishes once approved.
        response = operator.post(f"/api/v1/executions/{execution_id}/fork/",
                                 {"checkpoint_id": diagnose["checkpoint_id"],
                                  "state": {"approval_timeout_seconds": 600}}, format="json")
        assert response.status_code == 202, response.json()
        fork = response.json()
        assert fork["parent"] == execution_id and fork["forked_from_checkpoint"] == diagnose["checkpoint_id"]
        assert fork["id"] != execution_id
        poll(operator, fork["id"], "interrupted")
        fork_approval = the_approval(reviewer, fork["id"])
        waited = parse_datetime(fork_approval["deadline"]) - parse_datetime(fork_approval["created_at"])
        assert 590 <= waited.total_seconds() <= 610  # the edited deadline reached the graph
        response = reviewer.post(f"/api/v1/approvals/{fork_approval['id']}/decide/",
                                 {"decisions": [{"type": "approve"}]}, format="json")
        assert response.status_code == 200
        body = poll(operator, fork["id"], "succeeded")
        assert body["state"]["outcome"] == "shut_down" and body["state"]["approval_timeout_seconds"] == 600
        fork_nodes = [s["node"] for s in operator.get(f"/api/v1/executions/{fork['id']}/steps/").json()["results"]]
        assert "monitor" not in fork_nodes and "act" in fork_nodes  # it did not start over
        # The original is untouched.
        assert operator.get(f"/api/v1/executions/{execution_id}/").json()["state"].get("approval_timeout_seconds") \
            != 600


@pytest.mark.usefixtures("worker_log_on_failure")
class EditJourneyTests(ApiTransactionTestCase):
    def test_an_edited_tool_call_runs_with_the_edited_arguments(self) -> None:
        operator, reviewer = self.api("operator"), self.api("reviewer")
        response = operator.post(
            "/api/v1/executions/",
            {"graph": "t_hitl_agent", "input": {"messages": [{"role": "user", "content": "Mail Alice the Q3 numbers"}]}},
            format="json",
        )
        assert response.status_code == 202, response.json()
        execution_id = response.json()["id"]
        poll(operator, execution_id, "interrupted")
        approval = the_approval(reviewer, execution_id)
        assert approval["format"] == "hitl"
        [action] = approval["actions"]
        assert action["name"] == "send_email" and action["args"] == EMAIL
        assert "edit" in action["allowed_decisions"]

        edited = {**EMAIL, "to": "bob@example.com", "subject": "Q3 report (final)"}
        response = reviewer.post(f"/api/v1/approvals/{approval['id']}/decide/",
                                 {"decisions": [{"type": "edit", "args": edited}]}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == "edited"

        body = poll(operator, execution_id, "succeeded")
        tool_results = [m["content"] for m in body["state"]["messages"] if m.get("type") == "tool"]
        assert any("sent to bob@example.com: Q3 report (final)" in result for result in tool_results), tool_results
