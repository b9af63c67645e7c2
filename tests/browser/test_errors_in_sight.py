"""Errors in sight: a failed start brings its error into view with the field focused, says so at the top,
and leaves the user on an address that still answers (issue 14)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from orchestrator.models import Execution
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_failed_start_shows_its_error_in_view_with_the_field_focused(page, role_users):  # type: ignore[no-untyped-def]
    login(page, "otto")
    page.goto("/graphs/")
    card = page.locator("#graph-finops")
    card.locator("summary", has_text="Start execution").click()
    card.get_by_label("Input (JSON)").fill('{"acount": "acme-prod"}')
    card.get_by_role("button", name="Start execution").click()

    expect(page.locator(".messages .msg-error")).to_contain_text("finops was not started")
    invalid = page.locator("#graph-finops .field-invalid :is(textarea, input)").first
    expect(invalid).to_be_focused()
    expect(invalid).to_be_in_viewport()
    screenshot(page, "graphs-start-error")
    assert not Execution.objects.exists()

    # The address bar now reads the start URL; opening it again shows the graph's card, not a bare 405.
    response = page.goto(page.url)
    assert response is not None and response.status == 200
    assert page.url.endswith("/graphs/#graph-finops")
    expect(page.locator("#graph-finops")).to_be_visible()
    assert page.js_errors == []
