"""Graphs and executions through the API: start (202), read, filter, cancel; errors name the field."""

from __future__ import annotations

import datetime
import uuid

from django.utils import timezone

from orchestrator import services
from orchestrator.models import Execution
from tests.base import ApiTestCase, fields_of
from tests.factories import fixture_execution, fixture_llm_call, fixture_status

EXECUTION_KEYS = {
    "id", "graph", "graph_version", "status", "input", "state", "error", "tokens_used", "token_budget", "cost",
    "currency", "parent", "forked_from_checkpoint", "created_by", "created_at", "started_at", "finished_at",
    "pending_approvals",
}


class GraphListApiTests(ApiTestCase):
    def test_graphs_are_listed_with_their_picture(self) -> None:
        body = self.api("reviewer").get("/api/v1/graphs/").json()
        graphs = {g["name"]: g for g in body["results"]}
        assert body["count"] == len(graphs) and "finops" in graphs
        finops = graphs["finops"]
        assert len(finops["version"]) == 12 and finops["error"] is None
        assert {"monitor", "diagnose", "communicate", "await_approval"} <= set(finops["nodes"])
        assert {"source": "communicate", "target": "await_approval", "conditional": False} in finops["edges"]
        assert finops["mermaid"].startswith("---") or "graph" in finops["mermaid"]
        assert "account" in finops["input_schema"]["properties"]

    def test_pages_are_numbered_and_a_bad_page_is_refused(self) -> None:
        body = self.api("admin").get("/api/v1/graphs/?page_size=1").json()
        assert len(body["results"]) == 1 and body["next"]
        assert self.api("admin").get("/api/v1/graphs/?page=2&page_size=1").json()["results"][0]["name"] != \
            body["results"][0]["name"]
        assert self.api("admin").get("/api/v1/graphs/?page=999").status_code == 404
        response = self.api("admin").get("/api/v1/graphs/?page_size=abc")
        assert response.status_code == 400 and "page_size" in fields_of(response)


class ExecutionStartApiTests(ApiTestCase):
    def test_starting_answers_202_with_the_queued_execution(self) -> None:
        response = self.api("operator").post(
            "/api/v1/executions/",
            {"graph": "finops", "input": {"account": "acme-prod"}, "token_budget": 1234, "recursion_limit": 30},
            format="json",
        )
        assert response.status_code == 202, response.json()
        body = response.json()
        assert set(body) == EXECUTION_KEYS
        assert body["status"] == "queued" and body["graph"] == "finops"
        assert body["input"] == {"account": "acme-prod"} and body["token_budget"] == 1234
        assert body["created_by"] == "otto" and body["pending_approvals"] == [] and body["parent"] is None
        assert response["Location"].endswith(f"/api/v1/executions/{body['id']}/")
        execution = Execution.objects.get(id=body["id"])
        assert execution.recursion_limit == 30 and execution.created_by == self.users["operator"]

    def test_an_unknown_graph_is_a_400_naming_the_field(self) -> None:
        response = self.api("operator").post("/api/v1/executions/", {"graph": "nope", "input": {}}, format="json")
        assert response.status_code == 400
        assert response.json()["message"].startswith("graph: ")
        assert "nope" in fields_of(response)["graph"][0]
        assert not Execution.objects.exists()

    def test_input_the_state_schema_rejects_is_a_400_naming_the_key(self) -> None:
        response = self.api("operator").post(
            "/api/v1/executions/", {"graph": "finops", "input": {"acount": "acme-prod"}}, format="json"
        )
        assert response.status_code == 400
        assert "input.acount" in fields_of(response)
        assert "input.acount" in response.json()["message"]
        response = self.api("operator").post(
            "/api/v1/executions/", {"graph": "finops", "input": {"account": 7}}, format="json"
        )
        assert response.status_code == 400
        assert fields_of(response)["input.account"] == ["Expected string, got integer."]
        assert not Execution.objects.exists()

    def test_values_of_the_wrong_json_type_are_refused_not_coerced(self) -> None:
        for body, field in (
            ({"graph": "seed", "input": {}, "token_budget": "12"}, "token_budget"),
            ({"graph": "seed", "input": {}, "token_budget": True}, "token_budget"),
            ({"graph": "seed", "input": {}, "recursion_limit": 0}, "recursion_limit"),
            ({"graph": "seed", "input": {}, "token_budget": 2**70}, "token_budget"),
            ({"graph": 5, "input": {}}, "graph"),
            ({"graph": "seed", "input": []}, "input"),
            ({"graph": "seed", "input": {"task": "a\x00b"}}, "input"),
            ({"input": {}}, "graph"),
        ):
            response = self.api("operator").post("/api/v1/executions/", body, format="json")
            assert response.status_code == 400, body
            assert field in fields_of(response), (body, response.json())
        assert not Execution.objects.exists()

    def test_a_reviewer_may_not_start_one(self) -> None:
        response = self.api("reviewer").post("/api/v1/executions/", {"graph": "seed", "input": {}}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert not Execution.objects.exists()


class ExecutionReadApiTests(ApiTestCase):
    def test_one_execution_and_a_404_for_an_unknown_id(self) -> None:
        execution = services.execution_start(graph_name="seed", input={}, user=self.users["operator"])
        body = self.api("reviewer").get(f"/api/v1/executions/{execution.id}/").json()
        assert body["id"] == str(execution.id) and body["graph_version"] == execution.graph_version
        assert body["cost"] in (None, "0.000000")
        response = self.api("reviewer").get(f"/api/v1/executions/{uuid.uuid4()}/")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        # Not even a UUID: still the API's JSON error, not an HTML page.
        response = self.api("reviewer").get("/api/v1/executions/not-an-id/")
        assert response.status_code == 404 and response.json()["code"] == "not_found"

    def test_the_list_carries_summaries_and_the_detail_the_input_and_state(self) -> None:
        big = {"task": "x" * 50_000}
        execution = services.execution_start(graph_name="seed", input=big, user=self.users["operator"])
        [row] = self.api("reviewer").get("/api/v1/executions/").json()["results"]
        assert row["id"] == str(execution.id) and "input" not in row and "state" not in row
        assert {"status", "graph", "tokens_used", "cost", "pending_approvals"} <= set(row)
        detail = self.api("reviewer").get(f"/api/v1/executions/{execution.id}/").json()
        assert detail["input"] == big and "state" in detail

    def test_the_list_filters_by_graph_status_and_creation_time(self) -> None:
        seed = services.execution_start(graph_name="seed", input={}, user=self.users["operator"])
        finops = services.execution_start(graph_name="finops", input={"account": "acme-prod"}, user=None)
        fixture_status(finops.id, Execution.Status.SUCCEEDED)
        old = timezone.now() - datetime.timedelta(days=3)
        Execution.objects.filter(id=seed.id).update(created_at=old)

        def ids(query: str) -> list[str]:
            response = self.api("operator").get(f"/api/v1/executions/{query}")
            assert response.status_code == 200, response.json()
            return [e["id"] for e in response.json()["results"]]

        assert ids("") == [str(finops.id), str(seed.id)]  # newest first
        assert ids("?graph=seed") == [str(seed.id)]
        assert ids("?status=succeeded") == [str(finops.id)]
        day_ago = (timezone.now() - datetime.timedelta(days=1)).isoformat()
        assert ids(f"?created_after={day_ago.replace('+', '%2B')}") == [str(finops.id)]
        assert ids(f"?created_before={day_ago.replace('+', '%2B')}") == [str(seed.id)]
        for bad in ("?status=sleeping", "?created_after=yesterday", "?graph="):
            response = self.api("operator").get(f"/api/v1/executions/{bad}")
            assert response.status_code == 400, bad
            assert fields_of(response), bad


class ExecutionCancelApiTests(ApiTestCase):
    def test_an_operator_cancels_and_a_second_cancel_is_a_409(self) -> None:
        execution = services.execution_start(graph_name="seed", input={}, user=None)
        response = self.api("reviewer").post(f"/api/v1/executions/{execution.id}/cancel/")
        assert response.status_code == 403
        response = self.api("operator").post(f"/api/v1/executions/{execution.id}/cancel/")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        response = self.api("operator").post(f"/api/v1/executions/{execution.id}/cancel/")
        assert response.status_code == 409 and response.json()["code"] == "invalid_state"
        assert self.api("operator").post(f"/api/v1/executions/{uuid.uuid4()}/cancel/").status_code == 404


class ExecutionListCostTests(ApiTestCase):
    def make(self, n: int) -> None:
        from django.utils import timezone

        from orchestrator.models import Execution
        from traces.models import Span

        now = timezone.now()
        for i in range(n):
            execution = fixture_execution(graph_name="seed", status="succeeded")
            fixture_llm_call(execution=execution, name="m", model="gpt-4o-mini", input_tokens=1000 * i,
                                output_tokens=100, started_at=now, ended_at=now)

    def test_each_row_has_its_own_cost_and_the_list_costs_no_query_per_row(self) -> None:
        from decimal import Decimal

        from orchestrator.accounting import execution_cost
        from orchestrator.models import Execution

        client = self.api("operator")
        self.make(2)
        client.get("/api/v1/executions/")  # warm up (auth, sessions)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as two:
            client.get("/api/v1/executions/")
        self.make(6)
        with CaptureQueriesContext(connection) as eight:
            body = client.get("/api/v1/executions/").json()
        assert len(eight.captured_queries) <= len(two.captured_queries)
        assert body["count"] == 8
        for row in body["results"]:
            expected = execution_cost(Execution.objects.get(id=row["id"]))
            assert Decimal(row["cost"]) == expected.quantize(Decimal("0.000001"))
