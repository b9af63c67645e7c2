"""Budgets through the API: admins read and set them; all or nothing; every change logged."""

from __future__ import annotations

from typing import Any

from django.test import override_settings

from orchestrator.models import BudgetChange, BudgetDefault, GraphBudget
from tests.base import ApiTestCase, fields_of
from tests.factories import SEED_INPUT, fixture_execution


class BudgetApiTests(ApiTestCase):
    @override_settings(LOOPGATE_DEFAULT_TOKEN_BUDGET=50_000)
    def test_admins_read_the_budgets_of_every_graph(self) -> None:
        response = self.api("admin").get("/api/v1/budgets/")
        assert response.status_code == 200
        body = response.json()
        assert body["default_token_budget"] == 50_000 and body["default_source"] == "setting"
        finops = next(g for g in body["graphs"] if g["graph"] == "finops")
        assert finops == {"graph": "finops", "token_budget": None, "daily_token_limit": None,
                          "effective_token_budget": 50_000, "tokens_today": 0}

    def test_other_roles_get_403(self) -> None:
        for role in ("reviewer", "operator", "outsider"):
            assert self.api(role).get("/api/v1/budgets/").status_code == 403, role
            response = self.api(role).put("/api/v1/budgets/", {"default_token_budget": 1}, format="json")
            assert response.status_code == 403, role
        assert not BudgetDefault.objects.exists()

    def test_an_admin_sets_the_default_and_a_graph_and_each_change_is_logged(self) -> None:
        response = self.api("admin").put(
            "/api/v1/budgets/",
            {"default_token_budget": 20_000,
             "graphs": [{"graph": "finops", "token_budget": 5_000, "daily_token_limit": 100_000}]},
            format="json",
        )
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["default_token_budget"] == 20_000 and body["default_source"] == "default"
        finops = next(g for g in body["graphs"] if g["graph"] == "finops")
        assert finops["token_budget"] == 5_000 and finops["daily_token_limit"] == 100_000
        assert finops["effective_token_budget"] == 5_000
        seed = next(g for g in body["graphs"] if g["graph"] == "seed")
        assert seed["effective_token_budget"] == 20_000
        assert BudgetChange.objects.filter(username="alice").count() == 3

    def test_one_bad_graph_changes_nothing(self) -> None:
        response = self.api("admin").put(
            "/api/v1/budgets/",
            {"default_token_budget": 20_000,
             "graphs": [{"graph": "finops", "token_budget": 5_000, "daily_token_limit": None},
                        {"graph": "no-such-graph", "token_budget": 1, "daily_token_limit": None}]},
            format="json",
        )
        assert response.status_code == 400
        assert "graphs.1.graph" in fields_of(response), response.json()
        assert not BudgetDefault.objects.exists()
        assert not GraphBudget.objects.exists()
        assert not BudgetChange.objects.exists()

    def test_bad_values_are_400s_naming_the_field(self) -> None:
        for body, field in (
            ({"default_token_budget": -1}, "default_token_budget"),
            ({"default_token_budget": "100"}, "default_token_budget"),
            ({"graphs": [{"graph": "finops", "token_budget": 1.5, "daily_token_limit": None}]},
             "graphs.0.token_budget"),
            ({"graphs": [{"graph": "finops"}]}, "graphs.0.token_budget"),
            ({"graphs": [{"graph": "seed", "token_budget": 1, "daily_token_limit": None},
                         {"graph": "seed", "token_budget": 2, "daily_token_limit": None}]}, "graphs"),
        ):
            response = self.api("admin").put("/api/v1/budgets/", body, format="json")
            assert response.status_code == 400, body
            assert field in fields_of(response), (body, response.json())

    def test_a_graph_over_its_daily_limit_refuses_new_executions_with_429(self) -> None:
        response = self.api("admin").put(
            "/api/v1/budgets/", {"graphs": [{"graph": "seed", "token_budget": None, "daily_token_limit": 0}]},
            format="json",
        )
        assert response.status_code == 200
        response = self.api("operator").post("/api/v1/executions/", {"graph": "seed", "input": SEED_INPUT},
                                             format="json")
        assert response.status_code == 429
        assert response.json()["code"] == "daily_token_limit_reached"
        assert response.json()["extra"]["daily_token_limit"] == 0


class ExecutionBudgetRaiseApiTests(ApiTestCase):
    def over_budget(self) -> Any:
        from orchestrator.models import Execution

        return fixture_execution(graph_name="seed", status="budget_exceeded", tokens_used=10_000,
                                        token_budget=10_000, error={"reason": "over budget"})

    def test_an_admin_raises_the_budget_and_the_execution_is_queued_to_resume(self) -> None:
        execution = self.over_budget()
        with self.captureOnCommitCallbacks(execute=False) as queued:
            response = self.api("admin").post(f"/api/v1/executions/{execution.id}/budget/", {"token_budget": 15_000},
                                              format="json")
        assert response.status_code == 202, response.json()
        assert response.json()["status"] == "queued" and response.json()["token_budget"] == 15_000
        assert queued  # the runner is queued after commit

    def test_others_get_403_and_a_budget_below_the_used_tokens_is_a_400(self) -> None:
        execution = self.over_budget()
        url = f"/api/v1/executions/{execution.id}/budget/"
        for role in ("reviewer", "operator"):
            assert self.api(role).post(url, {"token_budget": 15_000}, format="json").status_code == 403, role
        response = self.api("admin").post(url, {"token_budget": 9_000}, format="json")
        assert response.status_code == 400 and "token_budget" in fields_of(response)
        execution.refresh_from_db()
        assert execution.status == "budget_exceeded" and execution.token_budget == 10_000
