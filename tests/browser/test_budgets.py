"""The Budgets page and raise-and-resume, in a real browser.

Screenshots: docs/screenshots/budgets-admin.png, budgets-row-error.png, execution-over-budget.png.
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orchestrator import budgets, registry, services
from orchestrator.models import BudgetChange, Execution, GraphBudget
from tests.browser.conftest import login, screenshot
from tests.services import start_worker, wait_for
from traces.models import Span
from tests.factories import fixture_execution, fixture_llm_call

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _usage_today(admin) -> None:  # type: ignore[no-untyped-def]
    """Some of today's usage and history, so the page shows what an admin would see."""
    budgets.graph_budget_set(user=admin, graph_name="deep_research", token_budget=40_000, daily_token_limit=250_000)
    budgets.graph_budget_set(user=admin, graph_name="finops", token_budget=None, daily_token_limit=20_000)
    now = timezone.now()
    for graph, used, model in (("deep_research", 38_120, "gpt-4o"), ("deep_research", 21_400, "gpt-4o"),
                               ("finops", 18_900, "gpt-4o-mini"), ("seed", 0, "")):
        execution = fixture_execution(graph_name=graph, tokens_used=used, token_budget=40_000,
                                             status=Execution.Status.SUCCEEDED)
        if model:
            fixture_llm_call(execution=execution, name=model, model=model,
                                input_tokens=int(used * 0.8), output_tokens=used - int(used * 0.8),
                                started_at=now, ended_at=now)


def test_an_admin_edits_budgets_in_place(page, role_users):  # type: ignore[no-untyped-def]
    registry.reset()
    _usage_today(role_users["admin"])
    login(page, "alice")
    page.goto("/budgets/")
    expect(page.locator("main h1")).to_have_text("Budgets")
    expect(page.locator(".modebar").filter(has_text="Simulated LLM")).to_be_visible()
    finops = page.locator("#graph-budget-finops")
    expect(finops.locator(".meter-text")).to_have_text("18,900 / 20,000")
    screenshot(page, "budgets-admin", full_page=True)

    # Edit a row in place: the row is swapped, the change log updates, the page is not reloaded.
    page.evaluate("window.__same_page = true")
    row = page.locator("#graph-budget-seed")
    row.get_by_label("Budget per execution of seed").fill("12,000")
    row.get_by_label("Daily token limit of seed").fill("100000")
    row.get_by_role("button", name="Save seed").click()
    expect(page.locator("#graph-budget-seed .saved-note")).to_have_text("Saved")
    expect(page.locator("#graph-budget-seed")).to_contain_text("own budget: 12,000")
    expect(page.locator("#budget-changes")).to_contain_text("seed: budget per execution")
    expect(page.locator("#budget-changes")).to_contain_text("100,000")
    assert page.evaluate("window.__same_page") is True
    seed = GraphBudget.objects.get(graph_name="seed")
    assert (seed.token_budget, seed.daily_token_limit) == (12_000, 100_000)

    # Bad input: the message is in the row, nothing is saved.
    changes = BudgetChange.objects.count()
    row = page.locator("#graph-budget-seed")
    row.get_by_label("Daily token limit of seed").fill("a lot")
    row.get_by_role("button", name="Save seed").click()
    expect(page.locator("#graph-budget-seed .errorlist")).to_have_text("Give a whole number of tokens, like 50,000.")
    screenshot(page, "budgets-row-error")
    assert BudgetChange.objects.count() == changes
    assert GraphBudget.objects.get(graph_name="seed").daily_token_limit == 100_000

    # The default: every graph without its own budget follows it.
    page.get_by_role("textbox", name="Default budget per execution").fill("80,000")
    page.get_by_role("button", name="Save default").click()
    expect(page.locator("#budget-default .saved-note")).to_contain_text("Saved: 80,000 tokens per execution")
    expect(page.locator("#graph-budget-finops")).to_contain_text("uses the default: 80,000")
    assert page.evaluate("window.__same_page") is True
    assert budgets.default_token_budget() == 80_000
    assert page.js_errors == []


def test_the_budgets_page_works_without_javascript(browser, asgi_server, role_users):  # type: ignore[no-untyped-def]
    registry.reset()
    context = browser.new_context(base_url=asgi_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        login(page, "alice")
        page.goto("/budgets/")
        row = page.locator("#graph-budget-finops")
        row.get_by_label("Budget per execution of finops").fill("7000")
        row.get_by_role("button", name="Save finops").click()
        page.wait_for_url("**/budgets/")
        expect(page.locator(".messages")).to_contain_text("Saved the budget of finops.")
        assert GraphBudget.objects.get(graph_name="finops").token_budget == 7_000
    finally:
        context.close()


@pytest.mark.slow
def test_an_admin_raises_the_budget_on_the_page_and_the_execution_continues_where_it_stopped(page, role_users):  # type: ignore[no-untyped-def]
    registry.reset()
    worker = start_worker("browser-budget")
    try:
        execution = services.execution_start(graph_name="t_budget_loop", input={"n": 0}, user=role_users["admin"],
                                             token_budget=10_000)
        wait_for(lambda: Execution.objects.filter(id=execution.id, status=Execution.Status.BUDGET_EXCEEDED).exists(),
                 timeout=90, what="the loop to run out of budget")
        login(page, "alice")
        page.goto(f"/executions/{execution.id}/")
        form = page.locator(f"#raise-budget-{execution.id}")
        expect(form).to_be_visible()
        expect(form).to_contain_text("Used 10,000 of 10,000")
        screenshot(page, "execution-over-budget")

        # Too small a budget: said in the form, nothing changes.
        form.get_by_label("New budget").fill("10,000")
        form.get_by_role("button", name="Raise budget and resume").click()
        expect(page.locator(f"#raise-budget-{execution.id} [role=alert]")).to_contain_text(
            "more than the 10,000 tokens already used")
        assert Execution.objects.get(id=execution.id).status == Execution.Status.BUDGET_EXCEEDED

        page.locator(f"#raise-budget-{execution.id}").get_by_label("New budget").fill("15,000")
        page.locator(f"#raise-budget-{execution.id}").get_by_role("button", name="Raise budget and resume").click()
        expect(page.locator(".messages")).to_contain_text("Budget raised to 15,000 tokens")
        wait_for(lambda: Execution.objects.filter(id=execution.id, status=Execution.Status.BUDGET_EXCEEDED,
                                                  tokens_used=15_000).exists(),
                 timeout=90, what="the resumed loop to stop at its new budget")
        # It continued from the stop: the counter went on from 10 to 15 (a restart would read 5).
        graph = registry.get_graph("t_budget_loop").compiled
        assert graph.get_state({"configurable": {"thread_id": str(execution.id)}}).values["n"] == 15
        assert Span.objects.filter(execution=execution, kind=Span.Kind.LLM, status=Span.Status.OK).count() == 15
        page.reload()
        expect(page.locator("#execution-header")).to_contain_text(re.compile(r"15,000\s*/\s*15,000"))
        assert BudgetChange.objects.filter(execution=execution, old_value=10_000, new_value=15_000).count() == 1
        assert page.js_errors == []
    finally:
        worker.kill()
