"""Back and Forward over pages that answer htmx with a fragment and push the URL.

htmx's filters on the executions list fetch ``/executions/?status=…`` with ``HX-Request`` and get
the results fragment; the same URL without the header is the whole page. Unless the answer says
``Vary: HX-Request``, the browser's cache holds one entry for both, and Back to that URL after
leaving the page shows the bare fragment (the case htmx's documentation warns about).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.factories import fixture_execution

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_back_to_a_filtered_list_shows_the_whole_page_not_the_fragment(page, role_users) -> None:  # type: ignore[no-untyped-def]
    fixture_execution(graph_name="t_counter", status="succeeded", input={}, created_by=role_users["operator"])
    failed = fixture_execution(graph_name="t_boom", status="failed", input={}, created_by=role_users["operator"])
    login(page, "otto")
    page.goto("/executions/")
    expect(page.locator("#executions-rows tr")).to_have_count(2)

    with page.expect_response(lambda r: "status=failed" in r.url and r.request.headers.get("hx-request") == "true"):
        page.get_by_label("Status").select_option("failed")
    page.wait_for_url("**/executions/?*status=failed*")
    expect(page.locator("#executions-rows tr")).to_have_count(1)

    page.locator("#executions-rows").get_by_role("link", name="t_boom").click()
    page.wait_for_url(f"**/executions/{failed.id}/")

    page.go_back()
    page.wait_for_url("**/executions/?*status=failed*")
    # The whole page: the top bar, the heading and the filters with the filter still chosen.
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.get_by_role("heading", name="Executions", level=1)).to_be_visible()
    expect(page.get_by_label("Status")).to_have_value("failed")
    expect(page.locator("#executions-rows tr")).to_have_count(1)

    page.go_forward()
    page.wait_for_url(f"**/executions/{failed.id}/")
    page.go_back()
    expect(page.locator("header.topbar")).to_be_visible()
    assert page.js_errors == []


def test_back_when_htmx_has_no_snapshot_restores_the_whole_page(page, role_users) -> None:  # type: ignore[no-untyped-def]
    """htmx keeps snapshots of pages it left in localStorage; when it has none (a full or disabled
    cache, here size 0) it asks the server with HX-Request and HX-History-Restore-Request and puts
    the answer in place of the whole body, so that answer must be the page, not the fragment."""
    fixture_execution(graph_name="t_counter", status="succeeded", input={}, created_by=role_users["operator"])
    fixture_execution(graph_name="t_boom", status="failed", input={}, created_by=role_users["operator"])
    login(page, "otto")
    page.goto("/executions/")
    page.evaluate("htmx.config.historyCacheSize = 0; localStorage.removeItem('htmx-history-cache')")
    page.get_by_label("Status").select_option("failed")
    page.wait_for_url("**/executions/?*status=failed*")
    expect(page.locator("#executions-rows tr")).to_have_count(1)
    page.get_by_label("Status").select_option("succeeded")
    page.wait_for_url("**/executions/?*status=succeeded*")
    expect(page.locator("#executions-rows tr")).to_have_count(1)

    with page.expect_response(lambda r: r.request.headers.get("hx-history-restore-request") == "true"):
        page.go_back()
    page.wait_for_url("**/executions/?*status=failed*")
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.get_by_role("heading", name="Executions", level=1)).to_have_count(1)
    expect(page.locator("#executions-rows tr")).to_have_count(1)
    expect(page.locator("#executions-rows")).to_contain_text("t_boom")
    assert page.js_errors == []
