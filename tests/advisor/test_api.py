"""The advisor in the REST API: findings of a graph and of an execution, dismissing and restoring them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from advisor.models import Dismissal
from orchestrator.models import Execution
from tests.advisor.test_findings import SEED_INPUT
from tests.base import ApiTransactionTestCase, fields_of

KEY = "whole_state:reports"


class AdvisorApiTests(ApiTransactionTestCase):
    @pytest.fixture(autouse=True)
    def _graphs(self, run: Callable[..., Execution]) -> None:
        self.execution = run("a_seed_long", SEED_INPUT)

    def test_a_graphs_findings_carry_evidence_growth_and_absolute_links(self) -> None:
        body = self.api("reviewer").get("/api/v1/graphs/a_seed_long/findings/").json()
        assert body["graph"] == "a_seed_long" and body["executions_seen"] == 1 and body["dismissed"] == []
        [finding] = body["findings"]
        assert finding["key"] == KEY and finding["kind"] == "whole_state" and finding["subject"] == "reports"
        assert finding["execution"] == str(self.execution.id)
        assert finding["url"].startswith(f"http://testserver/executions/{self.execution.id}/steps/")
        sizes = [point["bytes"] for point in finding["growth"]]
        assert len(sizes) >= 3 and sizes == sorted(sizes)

    def test_an_executions_findings(self) -> None:
        body = self.api("operator").get(f"/api/v1/executions/{self.execution.id}/findings/").json()
        assert [f["key"] for f in body["findings"]] == [KEY]

    def test_dismiss_then_restore(self) -> None:
        api = self.api("operator")
        response = api.post("/api/v1/graphs/a_seed_long/findings/dismiss/", {"key": KEY}, format="json")
        assert response.status_code == 201 and response.json()["dismissed_by"] == "otto"
        body = api.get("/api/v1/graphs/a_seed_long/findings/").json()
        assert body["findings"] == [] and [d["key"] for d in body["dismissed"]] == [KEY]
        assert api.get(f"/api/v1/executions/{self.execution.id}/findings/").json()["findings"] == []
        response = api.post("/api/v1/graphs/a_seed_long/findings/restore/", {"key": KEY}, format="json")
        assert response.json() == {"restored": True}
        assert [f["key"] for f in api.get("/api/v1/graphs/a_seed_long/findings/").json()["findings"]] == [KEY]
        assert api.post("/api/v1/graphs/a_seed_long/findings/restore/", {"key": KEY},
                        format="json").json() == {"restored": False}

    def test_refusals_change_nothing(self) -> None:
        response = self.api("reviewer").post("/api/v1/graphs/a_seed_long/findings/dismiss/", {"key": KEY},
                                             format="json")
        assert response.status_code == 403
        response = self.api("operator").post("/api/v1/graphs/a_seed_long/findings/dismiss/", {"key": "nope"},
                                             format="json")
        assert response.status_code == 400 and "key" in fields_of(response)
        response = self.api("operator").post("/api/v1/graphs/missing/findings/dismiss/", {"key": KEY},
                                             format="json")
        assert response.status_code == 404
        assert self.api("outsider").get("/api/v1/graphs/a_seed_long/findings/").status_code == 404
        assert not Dismissal.objects.exists()
