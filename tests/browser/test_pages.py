"""The frame every page shares, in a real browser: log in as each role, walk the top bar, log out.

Screenshots land in docs/screenshots/ (login, approvals-inbox, executions, graphs, budgets, components).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import login, logout, screenshot
from tests.escaping import HOSTILE
from tests.factories import fixture_execution

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# Which top-bar entries each role sees, and the page it lands on after logging in.
ROLES = {
    "alice": ("admin", ["Approvals", "Executions", "Graphs", "Chat", "Budgets", "Store", "Audit", "API tokens"], "Executions"),
    "rita": ("reviewer", ["Approvals", "Executions", "Graphs", "Chat", "Audit"], "Approvals"),
    "otto": ("operator", ["Approvals", "Executions", "Graphs", "Chat", "Audit"], "Executions"),
    "charlie": ("no role", ["Approvals", "Executions", "Graphs", "Chat", "Audit"], "Executions"),
}
PAGES = {
    "Approvals": "/approvals/",
    "Executions": "/executions/",
    "Graphs": "/graphs/",
    "Chat": "/chat/",
    "Budgets": "/budgets/",
    "Store": "/store/",
    "Audit": "/approvals/audit/",
    "API tokens": "/tokens/",
}


def expect_current(page, label: str) -> None:
    current = page.locator('nav.mainnav a[aria-current="page"]')
    expect(current).to_have_count(1)
    expect(current).to_contain_text(label)
    expect(page).to_have_title(re.compile(rf"^{label}\b"))


def visit_by_nav(page, label: str) -> None:
    page.locator("nav.mainnav").get_by_role("link", name=re.compile(rf"^{label}\b")).click()
    page.wait_for_url(f"**{PAGES[label]}")
    expect_current(page, label)


def make_sample_executions(user) -> None:
    """A few executions in every status, so the executions screenshot shows the badges."""
    from orchestrator.models import Execution

    now = timezone.now()
    samples = [
        ("support_triage", "running", 3_412, 50_000, 4, 40),
        ("email_agent", "interrupted", 8_950, 20_000, 6, 60 * 14),
        ("research_report", "succeeded", 18_240, 20_000, 11, 60 * 60 * 2),
        ("email_agent", "failed", 1_204, 20_000, 2, 60 * 60 * 5),
        ("research_report", "budget_exceeded", 20_000, 20_000, 9, 60 * 60 * 26),
        ("support_triage", "cancelled", 610, 50_000, 1, 60 * 60 * 30),
        ("support_triage", "queued", 0, 50_000, 0, 5),
    ]
    for graph, status, used, budget, steps, age in samples:
        execution = fixture_execution(
            graph_name=graph,
            graph_version="3f9c2a1b",
            status=status,
            tokens_used=used,
            token_budget=budget,
            step_count=steps,
            created_by=user,
        )
        started = now - timedelta(seconds=age)
        Execution.objects.filter(pk=execution.pk).update(created_at=started, started_at=started)


def test_login_page_is_calm_and_rejects_a_wrong_password(page, role_users):
    page.goto("/")
    page.wait_for_url("**/login/**")
    expect(page.locator("header.topbar")).to_have_count(0)
    expect(page.get_by_label("Username")).to_be_focused()
    screenshot(page, "login")

    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-error")).to_be_visible()
    expect(page.locator("header.topbar")).to_have_count(0)
    assert page.js_errors == []


def test_admin_walks_every_page_and_logs_out(page, role_users):
    make_sample_executions(role_users["admin"])
    login(page, "alice")
    role, entries, landing = ROLES["alice"]
    expect(page.locator("header.topbar .role-badge")).to_have_text(role)
    expect(page.locator("nav.mainnav a")).to_have_count(len(entries))
    expect_current(page, landing)

    for label in entries:
        visit_by_nav(page, label)
        expect(page.locator("main h1").first).to_be_visible()
        name = {"Approvals": "approvals-inbox", "API tokens": "api-tokens"}.get(label, label.lower())
        if label == "Graphs":  # mermaid really draws each diagram (strict mode, vendored script)
            expect(page.locator("#graph-seed pre.mermaid svg")).to_have_count(1)
            expect(page.locator("#graph-seed pre.mermaid svg")).to_contain_text("researcher")
        # The reviewer's inbox is pictured; the Store in test_store.py, the chat in test_chat.py.
        if label not in ("Approvals", "Store", "Chat"):
            screenshot(page, name)
        if label == "Executions":  # usable at 768 px too
            screenshot(page, "executions-768", viewport={"width": 768, "height": 1024})

    # Keyboard: the first Tab reaches the skip link, which then shows; it leads to <main>.
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["y"] >= 0
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()

    # The nav count pill is hidden while empty; the live regions are there but quiet.
    expect(page.locator("#nav-approvals-count")).to_be_hidden()
    expect(page.locator("#live-announcer")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#live-banner")).to_be_hidden()

    logout(page)
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.goto("/executions/")
    page.wait_for_url("**/login/**")
    assert page.js_errors == []


def test_reviewer_lands_on_the_inbox_and_cannot_open_budgets(page, role_users):
    login(page, "rita")
    role, entries, landing = ROLES["rita"]
    expect(page.locator("header.topbar .role-badge")).to_have_text(role)
    expect_current(page, landing)
    expect(page.locator("nav.mainnav").get_by_role("link", name="Budgets")).to_have_count(0)
    expect(page.locator("nav.mainnav a")).to_have_count(len(entries))
    screenshot(page, "approvals-inbox")

    for label in entries:
        visit_by_nav(page, label)

    response = page.goto("/budgets/")
    assert response is not None and response.status == 403
    # The app's own page, with the reason and the way back, not a bare "403 Forbidden".
    expect(page.locator("main")).to_contain_text("Only admins may open this page.")
    expect(page.locator("nav.mainnav")).to_be_visible()
    screenshot(page, "forbidden")

    page.goto("/approvals/")
    logout(page)
    expect(page.get_by_label("Username")).to_be_visible()
    assert page.js_errors == []


@pytest.mark.parametrize("username", ["otto", "charlie"])
def test_other_roles_see_their_role_and_no_budgets(page, role_users, username):
    login(page, username)
    role, entries, landing = ROLES[username]
    expect(page.locator("header.topbar .role-badge")).to_have_text(role)
    expect(page.locator("header.topbar .username")).to_have_text(username)
    expect_current(page, landing)
    expect(page.locator("nav.mainnav").get_by_role("link", name="Budgets")).to_have_count(0)
    if username == "otto":
        for label in entries:
            visit_by_nav(page, label)
    response = page.goto("/budgets/")
    assert response is not None and response.status == 403
    # The app's own page, with the reason and the way back, not a bare "403 Forbidden".
    expect(page.locator("main")).to_contain_text("Only admins may open this page.")
    expect(page.locator("nav.mainnav")).to_be_visible()
    screenshot(page, "forbidden")
    page.goto("/executions/")
    logout(page)
    page.wait_for_url("**/login/**")


def test_live_banner_shows_while_a_websocket_is_down(page, role_users):
    """loopgate.js shows the banner on htmx:wsClose (abnormal) / wsError and hides it on wsOpen."""
    login(page, "otto")
    banner = page.locator("#live-banner")
    expect(banner).to_be_hidden()
    # The top bar shows before the deferred scripts run: an event sent then finds no listener (CI saw
    # it). htmx opens the page's sockets after DOMContentLoaded, so once they are open loopgate.js listens.
    page.wait_for_function(
        """() => [...document.querySelectorAll('[ws-connect]')].every(el => {
                 const socket = ((el['htmx-internal-data'] || {}).webSocket || {}).socket;
                 return socket && socket.readyState === WebSocket.OPEN; })"""
    )
    page.evaluate(
        """() => document.querySelector('main').dispatchEvent(new CustomEvent('htmx:wsClose',
             {bubbles: true, detail: {event: {code: 1006}}}))"""
    )
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(re.compile("live updates paused — reconnecting", re.I))
    page.evaluate("() => document.querySelector('main').dispatchEvent(new CustomEvent('htmx:wsOpen', {bubbles: true}))")
    expect(banner).to_be_hidden()

    # For real: an htmx WebSocket to a route the server refuses drops abnormally and keeps retrying.
    page.evaluate(
        """() => { const el = document.createElement('div');
                   el.setAttribute('hx-ext', 'ws'); el.setAttribute('ws-connect', '/ws/__no-such-route__/');
                   document.querySelector('main').appendChild(el); htmx.process(el); }"""
    )
    expect(banner).to_be_visible(timeout=15_000)  # the server's refusal can take a while on a loaded machine
    page.goto("/executions/")  # leaving the page does not flash the banner, and the new page starts clean
    expect(banner).to_be_hidden()


def test_shared_components_render_escaped_and_work(page, role_users):
    """The template tags on one page: badges, meter, ids with copy, JSON viewer, chat bubbles, diff."""
    login(page, "alice")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    state = {
        "messages": [
            {"type": "system", "content": "You triage support email. Ask before sending anything."},
            {"type": "human", "content": "Please send the Q3 report to alice@example.com."},
            {
                "type": "ai",
                "content": "",
                "tool_calls": [
                    {
                        "name": "send_email",
                        "args": {"to": "alice@example.com", "subject": "Q3 report", "body": "Hi Alice, ..."},
                        "id": "call_8f2a91c4d0",
                    }
                ],
                "usage_metadata": {"input_tokens": 412, "output_tokens": 38, "total_tokens": 450},
            },
            {"type": "tool", "content": "sent (message id 1842)", "tool_call_id": "call_8f2a91c4d0", "name": "send_email"},
        ],
        "reports": [{"title": "Q2", "pages": 12}, {"title": "Q3", "pages": 14, "draft": False}],
        "notes": "A long note. " * 40,
        "attempts": 2,
        "reviewer": None,
        HOSTILE: HOSTILE,
    }
    diff = [
        {"op": "add", "path": "reports[1]", "after": {"title": "Q3", "pages": 14}},
        {"op": "change", "path": "messages[3].content", "before": "draft", "after": "sent (message id 1842)"},
        {"op": "remove", "path": "pending_tool_call", "before": "send_email"},
        {"op": "change", "path": HOSTILE, "before": 1, "after": HOSTILE},
    ]
    html = Template(
        """{% load loopgate json_viewer state_diff static %}<!doctype html><html lang="en"><head><meta charset="utf-8">
        <link rel="stylesheet" href="{% static 'css/loopgate.css' %}"><script src="{% static 'js/loopgate.js' %}"></script>
        <title>Components · Loopgate</title></head><body><main class="page">
        <div class="page-head"><h1>Components</h1><div class="actions">
          <button class="btn">Export JSON</button><button class="btn btn-danger">Reject</button>
          <button class="btn btn-primary">Approve</button></div></div>
        <div class="grid-2">
          <div class="stack">
            <section class="card"><div class="card-head"><h2>Statuses</h2></div><p class="row">
              {% for s in statuses %}{% status_badge s %}{% endfor %}</p>
              <dl class="dl">
                <dt>Execution</dt><dd>{% short_id execution_id %}</dd>
                <dt>Started</dt><dd>{{ started|reltime }} · ran {{ 192|duration }} · step {{ 0.85|duration }}</dd>
                <dt>Waiting</dt><dd>{{ started|reltime:"waiting" }}</dd>
                <dt>Tokens</dt><dd>{% token_meter 17400 20000 %}</dd>
                <dt>Cost</dt><dd>{{ cost|cost }}</dd>
              </dl></section>
            <section class="card"><div class="card-head"><h2>State</h2></div>{% json_view state %}</section>
          </div>
          <div class="stack">
            <section class="card"><div class="card-head"><h2>Diff</h2><span class="muted small">{{ diff|diff_summary }}</span></div>
              {% diff_view diff %}</section>
            <section class="card"><div class="card-head"><h2>Meters</h2></div>
              <p>{% token_meter 4000 20000 %}</p><p>{% token_meter 20000 20000 %}</p><p>{% token_meter 1234 None %}</p></section>
            <div class="empty"><strong>No approvals are waiting.</strong>Start an example graph from <a href="#">Graphs</a>.</div>
          </div>
        </div></main>
        <div id="live-announcer" class="sr-only" aria-live="polite"></div></body></html>"""
    ).render(
        Context(
            {
                "statuses": ["queued", "running", "interrupted", "succeeded", "failed", "cancelled", "budget_exceeded"],
                "execution_id": "8f2a91c4-d0b1-4e55-9a7e-3c1d2b4f5a60",
                "started": timezone.now() - timedelta(minutes=4),
                "cost": "0.0123",
                "state": state,
                "diff": diff,
            }
        )
    )
    page.route("**/__components__", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto("/__components__")
    screenshot(page, "components", full_page=True)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "components-dark", full_page=True)
    page.emulate_media(color_scheme="light")

    # Hostile text stays text: nothing ran, and it is visible as characters.
    assert page.evaluate("() => window.__x") is None
    expect(page.locator(".json-view").get_by_text(HOSTILE).first).to_be_visible()
    expect(page.locator(".badge-interrupted")).to_have_text("waiting for review")
    expect(page.locator(".badge-budget_exceeded")).to_have_text("over budget")
    expect(page.locator(".bubble-ai .tool-call")).to_contain_text("send_email")

    # Long strings open with "show all"; the copy button copies the full id.
    more = page.locator(".jv-more summary").first
    expect(more).to_contain_text("show all")
    more.click()
    expect(page.locator(".jv-more .jv-full").first).to_be_visible()
    page.locator(".copy-btn").first.click()
    expect(page.locator(".copy-btn").first).to_have_class(re.compile("copied"))
    assert page.evaluate("() => navigator.clipboard.readText()") == "8f2a91c4-d0b1-4e55-9a7e-3c1d2b4f5a60"
    assert page.js_errors == []
