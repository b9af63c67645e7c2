"""The Budgets page, its forms, the raise-and-resume form and the daily limit on the Graphs page,
for every role, through the test client."""

from __future__ import annotations

import datetime
import json

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from orchestrator import budgets, registry, services
from orchestrator.models import BudgetChange, BudgetDefault, Execution, GraphBudget
from tests.base import PageTestCase
from tests.factories import SEED_INPUT, fixture_execution, fixture_llm_call, fixture_status
from traces.models import Span

Status = Execution.Status
HTMX = {"HTTP_HX_REQUEST": "true"}
PAGE = reverse("budgets")
DEFAULT_URL = reverse("budget_default_set")
SEED_URL = reverse("graph_budget_set", args=["seed"])




class BudgetViewTestCase(PageTestCase):
    fresh_registry = True  # the pages list the registered graphs


class BudgetsPermissionTests(BudgetViewTestCase):
    def test_reviewers_operators_and_outsiders_get_403_on_every_budget_url(self) -> None:
        execution = fixture_execution(graph_name="seed", status=Status.BUDGET_EXCEEDED, tokens_used=10,
                                             token_budget=10)
        raise_url = reverse("execution_budget_raise", args=[execution.id])
        for role in ("reviewer", "operator", "outsider"):
            with self.subTest(role=role):
                self.login(role)
                self.assertEqual(self.client.get(PAGE).status_code, 403)
                # Forged posts: no form was shown, the answer is still no, and nothing changes.
                self.assertEqual(self.client.post(DEFAULT_URL, {"token_budget": "1"}).status_code, 403)
                self.assertEqual(self.client.post(SEED_URL, {"token_budget": "1", "daily_token_limit": ""},
                                                  **HTMX).status_code, 403)
                self.assertEqual(self.client.post(raise_url, {"token_budget": "999"}).status_code, 403)
        self.assertFalse(BudgetDefault.objects.exists())
        self.assertFalse(GraphBudget.objects.exists())
        self.assertFalse(BudgetChange.objects.exists())
        execution.refresh_from_db()
        self.assertEqual((execution.status, execution.token_budget), (Status.BUDGET_EXCEEDED, 10))

    def test_the_budgets_link_is_shown_to_admins_only(self) -> None:
        self.login("operator")
        self.assertNotContains(self.client.get(reverse("graphs")), f'href="{PAGE}"')
        self.login("admin")
        self.assertContains(self.client.get(reverse("graphs")), f'href="{PAGE}"')

    def test_budget_posts_need_post(self) -> None:
        self.login("admin")
        self.assertEqual(self.client.get(DEFAULT_URL).status_code, 405)
        self.assertEqual(self.client.get(SEED_URL).status_code, 405)


@override_settings(LOOPGATE_DEFAULT_TOKEN_BUDGET=50_000)
class BudgetsPageTests(BudgetViewTestCase):
    def test_an_admin_sees_the_default_a_row_per_graph_todays_usage_and_the_change_log(self) -> None:
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=8_000,
                                 daily_token_limit=20_000)
        execution = fixture_execution(graph_name="seed", tokens_used=5_000, status=Status.SUCCEEDED)
        now = timezone.now()
        fixture_llm_call(execution=execution, name="gpt-4o", model="gpt-4o",
                            input_tokens=4_000, output_tokens=1_000, started_at=now, ended_at=now)
        old = fixture_execution(graph_name="seed", tokens_used=7_000, status=Status.SUCCEEDED)
        Execution.objects.filter(id=old.id).update(created_at=now - datetime.timedelta(days=1))
        self.login("admin")
        response = self.client.get(PAGE)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Default budget per execution")
        self.assertContains(response, 'value="50,000"')
        self.assertContains(response, "Now the setting <code>LOOPGATE_DEFAULT_TOKEN_BUDGET</code>")
        for entry in registry.all_entries():
            self.assertContains(response, f'id="graph-budget-{entry.name}"')
        seed_row = response.content.decode().split('<tr id="graph-budget-seed">')[1].split("</tr>")[0]
        self.assertIn('value="8,000"', seed_row)
        self.assertIn('value="20,000"', seed_row)
        self.assertContains(response, "own budget: 8,000")
        self.assertContains(response, "uses the default: 50,000")
        # Today's usage against the daily limit: only today's execution counts.
        self.assertContains(response, '<span class="meter-text">5,000 / 20,000</span>', html=True)
        # Cost today: 4,000 in × $2.50/M + 1,000 out × $10/M = $0.02.
        rows = {row.name: row for row in response.context["rows"]}
        self.assertEqual(str(rows["seed"].usage_today.cost), "0.02")
        self.assertContains(response, "$0.02")
        # Per graph per day: today and yesterday.
        days = [(d.graph_name, d.tokens) for d in response.context["usage_days"]]
        self.assertEqual(days, [("seed", 5_000), ("seed", 7_000)])
        # The change log: who, what, old → new.
        log = response.content.decode().split('id="budget-changes"')[1]
        self.assertIn("alice", log)
        self.assertIn("seed: daily token limit", log)
        self.assertIn("<strong>20,000</strong>", log)
        self.assertIn("no limit", log)

    def test_the_page_says_plainly_when_the_model_is_simulated(self) -> None:
        self.login("admin")
        with override_settings(LOOPGATE_LLM_BASE_URL=""):
            response = self.client.get(PAGE)
        self.assertContains(response, "Simulated LLM: the offline model answers (set LOOPGATE_LLM_BASE_URL for a "
                                      "real one).")
        self.assertContains(response, "<strong>Simulated LLM.</strong>")
        self.assertTrue(response.context["llm_simulated"])
        with override_settings(LOOPGATE_LLM_BASE_URL="http://127.0.0.1:9/v1", LOOPGATE_LLM_MODEL="m"):
            response = self.client.get(PAGE)
        self.assertNotContains(response, "Simulated LLM")
        self.assertFalse(response.context["llm_simulated"])


@override_settings(LOOPGATE_DEFAULT_TOKEN_BUDGET=50_000)
class BudgetFormTests(BudgetViewTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.login("admin")

    def test_saving_the_default_without_javascript_redirects_with_a_message(self) -> None:
        response = self.client.post(DEFAULT_URL, {"token_budget": "75,000"}, follow=True)
        self.assertRedirects(response, PAGE)
        self.assertContains(response, "The default budget is now 75,000 tokens per execution.")
        self.assertEqual(budgets.default_token_budget(), 75_000)
        change = BudgetChange.objects.get()
        self.assertEqual((change.old_value, change.new_value, change.username), (50_000, 75_000, "alice"))

    def test_saving_the_default_with_htmx_returns_the_region_with_the_new_values(self) -> None:
        response = self.client.post(DEFAULT_URL, {"token_budget": "60000"}, **HTMX)
        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "orchestrator/partials/budgets_main.html")
        self.assertTemplateNotUsed(response, "base.html")
        self.assertContains(response, "Saved: 60,000 tokens per execution")
        self.assertContains(response, "uses the default: 60,000")

    def test_bad_input_saves_nothing_and_says_why_with_422(self) -> None:
        for value, message in (("lots", "Give a whole number of tokens, like 50,000."),
                               ("-1", "Give 0 or more tokens."), ("", "Give a number of tokens.")):
            with self.subTest(value=value):
                for extra in ({}, HTMX):
                    response = self.client.post(DEFAULT_URL, {"token_budget": value}, **extra)
                    self.assertEqual(response.status_code, 422)
                    self.assertContains(response, message, status_code=422)
        self.assertFalse(BudgetDefault.objects.exists())
        self.assertFalse(BudgetChange.objects.exists())

    def test_a_graph_row_is_saved_in_place_with_htmx(self) -> None:
        response = self.client.post(SEED_URL, {"token_budget": "12 000", "daily_token_limit": "100,000"}, **HTMX)
        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "orchestrator/partials/graph_budget_row.html")
        self.assertTemplateNotUsed(response, "base.html")
        body = response.content.decode()
        self.assertTrue(body.lstrip().startswith('<tr id="graph-budget-seed">'))
        self.assertIn("Saved", body)
        # The change log comes along, swapped out of band.
        self.assertIn('id="budget-changes" aria-labelledby="budget-changes-title" hx-swap-oob="true"', body)
        row = GraphBudget.objects.get(graph_name="seed")
        self.assertEqual((row.token_budget, row.daily_token_limit), (12_000, 100_000))
        self.assertEqual(BudgetChange.objects.count(), 2)

    def test_a_graph_row_saved_without_javascript_redirects(self) -> None:
        response = self.client.post(SEED_URL, {"token_budget": "", "daily_token_limit": "5000"})
        self.assertRedirects(response, PAGE)
        self.assertEqual(GraphBudget.objects.get(graph_name="seed").daily_token_limit, 5_000)

    def test_a_bad_graph_row_saves_nothing_and_shows_the_error_in_the_row(self) -> None:
        response = self.client.post(SEED_URL, {"token_budget": "ten", "daily_token_limit": "5000"}, **HTMX)
        self.assertEqual(response.status_code, 422)
        self.assertContains(response, "Give a whole number of tokens, like 50,000.", status_code=422)
        self.assertContains(response, 'value="ten"', status_code=422)
        response = self.client.post(SEED_URL, {"token_budget": "ten", "daily_token_limit": "5000"})
        self.assertEqual(response.status_code, 422)
        self.assertTemplateUsed(response, "orchestrator/budgets.html")
        self.assertFalse(GraphBudget.objects.exists())
        self.assertFalse(BudgetChange.objects.exists())

    def test_an_unknown_graph_is_404(self) -> None:
        response = self.client.post(reverse("graph_budget_set", args=["nope"]), {"token_budget": "1"})
        self.assertEqual(response.status_code, 404)


class RaiseBudgetViewTests(BudgetViewTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.execution = fixture_execution(
            graph_name="seed", status=Status.BUDGET_EXCEEDED, tokens_used=10_000, token_budget=10_000,
            error={"type": "ExecutionOverBudget", "code": "budget_exceeded", "node": "think", "step": 11,
                   "message": "LLM call refused: the execution has used 10,000 of its 10,000 token budget.",
                   "reason": "LLM call refused: the execution has used 10,000 of its 10,000 token budget."},
        )
        self.url = reverse("execution_budget_raise", args=[self.execution.id])
        self.page = reverse("traces:execution", args=[self.execution.id])

    def test_an_admin_sees_the_form_on_the_execution_page_and_an_operator_does_not(self) -> None:
        self.login("admin")
        response = self.client.get(self.page)
        self.assertContains(response, f'action="{self.url}"')
        self.assertContains(response, "Raise budget and resume")
        self.assertContains(response, 'value="20,000"')  # a suggestion: twice what it used
        self.login("operator")
        self.assertNotContains(self.client.get(self.page), "Raise budget and resume")

    def test_the_form_is_not_shown_for_other_statuses(self) -> None:
        fixture_status(self.execution.id, Status.SUCCEEDED)
        self.login("admin")
        self.assertNotContains(self.client.get(self.page), "Raise budget and resume")

    def test_raising_resumes_the_execution_and_returns_to_its_page(self) -> None:
        self.login("admin")
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            response = self.client.post(self.url, {"token_budget": "25,000"})
        self.assertRedirects(response, self.page, fetch_redirect_response=False)
        self.execution.refresh_from_db()
        self.assertEqual((self.execution.status, self.execution.token_budget), (Status.QUEUED, 25_000))
        self.assertIn((str(self.execution.id),), [c.args for c in callbacks if getattr(c, "func", None)
                                                   is services._queue_advance])
        response = self.client.get(self.page)
        self.assertContains(response, "Budget raised to 25,000 tokens; the execution resumes from where it stopped.")

    def test_with_htmx_success_redirects_and_a_too_small_budget_is_a_422_fragment(self) -> None:
        self.login("admin")
        response = self.client.post(self.url, {"token_budget": "9000"}, **HTMX)
        self.assertEqual(response.status_code, 422)
        self.assertTemplateUsed(response, "orchestrator/partials/raise_budget.html")
        self.assertContains(response, "more than the 10,000 tokens already used", status_code=422)
        self.execution.refresh_from_db()
        self.assertEqual(self.execution.status, Status.BUDGET_EXCEEDED)
        with self.captureOnCommitCallbacks(execute=False):
            response = self.client.post(self.url, {"token_budget": "30000"}, **HTMX)
        self.assertEqual(response.status_code, 204)
        self.assertEqual(response["HX-Redirect"], self.page)

    def test_without_javascript_an_error_returns_to_the_page_with_the_message(self) -> None:
        fixture_status(self.execution.id, Status.SUCCEEDED)
        self.login("admin")
        response = self.client.post(self.url, {"token_budget": "30000"}, follow=True)
        self.assertContains(response, "The budget was not raised: Only an execution stopped over budget")
        self.assertFalse(BudgetChange.objects.exists())


class GraphsPageBudgetTests(BudgetViewTestCase):
    def test_the_start_form_names_the_graphs_budget(self) -> None:
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=8_000,
                                 daily_token_limit=None)
        self.login("operator")
        response = self.client.get(reverse("graphs"))
        self.assertContains(response, 'placeholder="8,000"')
        self.assertContains(response, "Leave empty for the graph's budget (8,000 tokens); only admins may give more.")

    def test_an_operator_asking_for_more_than_the_graphs_budget_is_told_the_limit(self) -> None:
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=8_000,
                                 daily_token_limit=None)
        self.login("operator")
        data = {"input": json.dumps(SEED_INPUT), "token_budget": "9000", "recursion_limit": ""}
        response = self.client.post(reverse("graph_start", args=["seed"]), data)
        self.assertContains(response, "At most 8,000 tokens: that is the budget of seed.", status_code=422)
        self.assertFalse(Execution.objects.exists())

    def test_starting_a_graph_over_its_daily_limit_shows_the_message_on_its_card(self) -> None:
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=None,
                                 daily_token_limit=1_000)
        fixture_execution(graph_name="seed", tokens_used=1_200, status=Status.SUCCEEDED)
        self.login("operator")
        url = reverse("graph_start", args=["seed"])
        data = {"input": json.dumps(SEED_INPUT), "token_budget": "", "recursion_limit": ""}
        for extra in ({}, HTMX):
            response = self.client.post(url, data, **extra)
            self.assertEqual(response.status_code, 429)
            self.assertContains(response, "seed has used its daily token limit: 1,200 of 1,000 tokens today.",
                                status_code=429)
        self.assertEqual(Execution.objects.count(), 1)
