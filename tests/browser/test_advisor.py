"""The advisor in a real browser: findings on the Graphs page and an execution's page, dismissed and
restored in place (htmx swaps the panel; the page is not reloaded).

The execution runs through the real runner and LangGraph in the test process (``t_advisor``: the seed's
loop with a plain-list ``reports`` and a 3,000-token prompt in its researcher); Daphne serves the pages.

Screenshots: advisor-graphs, advisor-execution, advisor-dismissed.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from advisor.models import Dismissal
from orchestrator import registry, services
from orchestrator.models import Execution
from orchestrator.runner import execution_advance
from tests.advisor.test_findings import SEED_INPUT
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _run(user) -> Execution:  # type: ignore[no-untyped-def]
    execution = services.execution_start(graph_name="t_advisor", input=SEED_INPUT, user=user)
    execution_advance(execution_id=execution.id)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.SUCCEEDED, execution.error
    return execution


def _scroll_to(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    page.locator(selector).evaluate("e => window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY - 150)")


def test_findings_show_on_both_pages_and_one_is_dismissed_and_restored(page, role_users, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    registry.reset()
    monkeypatch.setattr(services, "_queue_advance", lambda _id: None)
    execution = _run(role_users["operator"])
    login(page, "otto")

    # The Graphs page: the graph's card lists both findings, with the growth of "reports".
    page.goto("/graphs/")
    panel = page.locator("#advisor-graph-t_advisor")
    expect(panel.locator(".findings-open > .finding")).to_have_count(2)
    expect(panel).to_contain_text("The state channel “reports” is rewritten whole at every step")
    expect(panel).to_contain_text("“researcher” sends a prompt of")
    expect(panel.locator(".finding-growth tbody tr")).to_have_count(4)
    _scroll_to(page, "#advisor-graph-t_advisor")
    screenshot(page, "advisor-graphs")

    # The link goes to the step that shows the growth.
    panel.get_by_role("link", name="Show step 15").click()
    page.wait_for_url(f"**/executions/{execution.id}/steps/**")

    # The execution's page: the same findings, right under the outcome.
    page.goto(f"/executions/{execution.id}/")
    here = page.locator(f"#advisor-execution-{execution.id}")
    expect(here.locator(".findings-open > .finding")).to_have_count(2)
    screenshot(page, "advisor-execution")

    # Dismiss the prompt finding in place: the panel is swapped, the page stays.
    page.evaluate("window.__same_page = true")
    here.get_by_role("button", name=re.compile("^Dismiss: “researcher” sends a prompt of [0-9,]+ tokens$")).click()
    expect(here.locator(".findings-open > .finding")).to_have_count(1)
    expect(here.locator(".advisor-dismissed summary")).to_have_text("1 dismissed for this graph")
    here.locator(".advisor-dismissed summary").click()
    expect(here.locator(".advisor-dismissed")).to_contain_text("Dismissed by otto")
    assert page.evaluate("window.__same_page") is True
    assert Dismissal.objects.get().key == "long_prompt:researcher"
    screenshot(page, "advisor-dismissed")

    # Dismissed for the graph: the Graphs page no longer lists it either. Undo brings it back.
    page.goto("/graphs/")
    panel = page.locator("#advisor-graph-t_advisor")
    expect(panel.locator(".findings-open > .finding")).to_have_count(1)
    panel.locator(".advisor-dismissed summary").click()
    panel.get_by_role("button", name=re.compile("^Undo dismissal: “researcher” sends a prompt")).click()
    expect(panel.locator(".findings-open > .finding")).to_have_count(2)
    assert not Dismissal.objects.exists()
    assert page.js_errors == []
