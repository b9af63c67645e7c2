"""Safe one-key decisions: an action the graph marks high-stakes is not approved by a single "a"; the
same key again within three seconds approves it. Ordinary actions stay one key (issue 14)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from approvals.models import Approval
from tests.approvals.factories import make_approval
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHUTDOWN = {"action_requests": [{"name": "shutdown_cluster", "args": {"cluster": "prod-eu-1"},
                                 "high_stakes": True}],
            "review_configs": [{"action_name": "shutdown_cluster", "allowed_decisions": ["approve", "reject"]}]}


def test_a_high_stakes_action_needs_the_key_twice_and_an_ordinary_one_once(page, role_users):  # type: ignore[no-untyped-def]
    risky = make_approval(value=SHUTDOWN)
    plain = make_approval(value="ok to send the weekly report?")
    login(page, "rita")

    page.goto(f"/approvals/{risky.id}/")
    expect(page.locator(".high-stakes-note")).to_contain_text("high-stakes")
    page.keyboard.press("a")
    expect(page.locator("[data-key-confirm]")).to_contain_text("press a again to approve")
    screenshot(page, "approval-high-stakes")
    page.wait_for_timeout(500)
    assert Approval.objects.get(id=risky.id).is_pending  # one key decided nothing
    page.keyboard.press("a")
    expect(page.locator("#decision .outcome")).to_contain_text("Approved", timeout=10_000)
    assert Approval.objects.get(id=risky.id).status == Approval.Status.APPROVED

    page.goto(f"/approvals/{plain.id}/")
    expect(page.locator(".high-stakes-note")).to_have_count(0)
    page.keyboard.press("a")
    expect(page.locator("#decision .outcome")).to_contain_text("Approved", timeout=10_000)
    assert page.js_errors == []
