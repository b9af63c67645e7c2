"""The admins' Store page in a real browser: memories a graph kept, filtered by namespace, one deleted.

Screenshot: docs/screenshots/store-admin.png.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from orchestrator.models import AuditEntry
from orchestrator.store import get_store
from tests.browser.conftest import login, logout, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _memories() -> None:
    store = get_store()
    store.put(("memories", "ada"), "tea", {"text": "Likes green tea, no sugar", "kind": "taste"})
    store.put(("memories", "ada"), "born", {"text": "Born in London in 1815", "kind": "fact"}, ttl=60 * 24 * 30)
    store.put(("memories", "grace"), "navy", {"text": "Rear admiral, US Navy", "kind": "fact",
                                              "sources": ["wiki", "navy.mil"]})
    store.put(("finops", "acme-prod"), "idle-policy", {"max_idle_hours": 72, "owner": "platform"}, ttl=60)


def test_an_admin_filters_the_store_and_deletes_a_memory(page, role_users):  # type: ignore[no-untyped-def]
    _memories()
    login(page, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Store").click()
    expect(page.locator("main h1")).to_have_text("Store")
    rows = page.locator(".store-table tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator(".store-namespaces")).to_contain_text("memories.ada")
    screenshot(page, "store-admin", full_page=True)

    # Filter by a namespace: its items and those below it.
    page.get_by_role("link", name="memories.ada").click()
    expect(rows).to_have_count(2)
    expect(page.get_by_role("textbox", name="Namespace")).to_have_value("memories.ada")

    # Delete one item: back on the same filtered list, the item gone, the Store forgot it.
    page.get_by_role("button", name="Delete tea from memories.ada").click()
    expect(page.locator(".msg").filter(has_text="Deleted tea from memories.ada.")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(page.get_by_role("textbox", name="Namespace")).to_have_value("memories.ada")
    assert get_store().get(("memories", "ada"), "tea") is None
    assert AuditEntry.objects.get().outcome == "deleted"

    # A malformed namespace says how to write one, in view.
    page.get_by_role("textbox", name="Namespace").fill("memories..ada")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#namespace-errors")).to_contain_text("separated by dots")

    # Reviewers see no Store in the top bar and are refused the page.
    logout(page)
    login(page, "rita")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Store")).to_have_count(0)
    response = page.goto("/store/")
    assert response is not None and response.status == 403
