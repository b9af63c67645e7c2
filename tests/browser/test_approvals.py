"""A reviewer decides in a real browser, and an operator only reads.

Daphne serves the app, a Celery worker process runs the graphs, headless Chromium
clicks. Screenshots: docs/screenshots/approvals-*.png.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from approvals import live
from approvals.models import Approval
from orchestrator import services as executions
from orchestrator.models import Execution
from tests.approvals.graphs import EMAIL
from tests.approvals.factories import EMAIL_SCHEMA, HITL_VALUE, make_approval, make_execution
from tests.browser.conftest import login, screenshot
from tests.escaping import HOSTILE
from tests.services import Proc, start_worker, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]
TIMEOUT = 60


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker) -> Iterator[Proc]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        proc = start_worker("browser-approvals", concurrency=2)
    yield proc
    proc.kill()


def waiting(graph: str, input: dict) -> tuple[Execution, Approval]:  # noqa: A002
    execution = executions.execution_start(graph_name=graph, input=input, user=None)
    approval = wait_for(lambda: Approval.objects.filter(execution=execution, status="pending").first(),
                        timeout=TIMEOUT, what=f"{graph} to ask")
    return execution, approval  # type: ignore[return-value]


def test_a_reviewer_edits_and_approves_an_action_and_sees_the_execution_move_on(page, role_users, worker) -> None:  # type: ignore[no-untyped-def]
    waiting("finops", {"account": "acme-prod"})
    execution, approval = waiting("t_hitl_agent", {"messages": [
        {"role": "user", "content": "Send Alice the Q3 report, and say the numbers are attached."}]})

    login(page, "rita")
    page.goto("/approvals/")
    rows = page.locator("#approval-rows tr.approval-row")
    expect(rows).to_have_count(2)
    expect(page.locator("#nav-approvals-count")).to_have_text("2")
    # A new approval slides in live, over the WebSocket, without a reload.
    waiting("t_plain", {})
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("ask")
    expect(page.locator("#nav-approvals-count")).to_have_text("3")
    screenshot(page, "approvals-inbox-pending")

    # The keyboard: "?" lists the keys, j/k move, Enter opens.
    page.keyboard.press("?")
    expect(page.locator("#keys-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#keys-help")).to_be_hidden()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bis-current\b"))
    expect(rows.nth(1)).to_contain_text("send_email")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/approvals/{approval.id}/")
    expect(page.locator("h1")).to_contain_text("send_email")
    card = page.locator("#action-0")
    expect(card.locator(".args-table")).to_contain_text("alice@example.com")
    decision = page.locator("#decision")
    for name in ("Approve", "Respond", "Reject"):
        expect(decision.get_by_role("button", name=name, exact=True)).to_be_visible()
    screenshot(page, "approvals-detail")

    # Respond needs a message: the answer comes back with the error next to the box, nothing decided.
    decision.get_by_role("button", name="Respond", exact=True).click()
    expect(decision.locator(".decision-comment .errorlist")).to_have_text("Write the answer to send back to the agent.")
    assert Approval.objects.get(id=approval.id).is_pending

    # Edit: LangChain's middleware sends no argument schema, so the arguments open as one JSON object.
    page.keyboard.press("e")
    editor = page.get_by_label("Arguments (JSON)")
    expect(editor).to_be_focused()
    assert json.loads(editor.input_value()) == EMAIL
    editor.fill("{\n  \"to\": \"bob@example.com\",\n  \"subject\": \"Q3 report (final)\",\n  \"body\": ")
    page.get_by_role("button", name="Approve with these arguments").click()
    expect(page.locator("#edit-0 .errorlist")).to_contain_text("Not valid JSON")  # next to the field, nothing sent
    assert Approval.objects.get(id=approval.id).is_pending
    page.goto(f"/approvals/{approval.id}/?edit=1#edit-0")
    edited = {**EMAIL, "to": "bob@example.com", "subject": "Q3 report (final)"}
    page.get_by_label("Arguments (JSON)").fill(json.dumps(edited, indent=2))
    screenshot(page, "approvals-detail-edit")
    page.get_by_role("button", name="Approve with these arguments").click()

    outcome = page.locator(".outcome")
    expect(outcome).to_contain_text("Edited by you")
    expect(outcome.locator(".changes-table")).to_contain_text("bob@example.com")
    # The execution moves on: the status line follows it until it settles.
    expect(page.locator("#execution-status .badge")).to_have_text("succeeded", timeout=TIMEOUT * 1000)
    # The rest of the page caught up with the decision.
    expect(page.locator("#approval-head .badge")).to_have_text("edited")
    expect(page.locator("#why-execution-status .badge")).to_have_text("succeeded")
    expect(page.locator("#approval-head").get_by_role("button", name="Claim")).to_have_count(0)
    expect(page.locator("#nav-approvals-count")).to_have_text("2")
    expect(page.get_by_role("link", name=re.compile(r"^Next: "))).to_be_visible()
    screenshot(page, "approvals-decided")

    # The audit log has it: who, what, where.
    page.goto("/approvals/audit/")
    entry = page.locator("table.audit-table tbody tr").first
    expect(entry).to_contain_text("rita")
    expect(entry).to_contain_text("edited")
    expect(entry).to_contain_text("t_hitl_agent")
    screenshot(page, "approvals-audit")

    execution.refresh_from_db()
    assert execution.status == Execution.Status.SUCCEEDED, execution.error
    [result] = [m["content"] for m in execution.state["messages"] if m.get("type") == "tool"]
    assert "sent to bob@example.com: Q3 report (final)" in result
    assert page.js_errors == []


def test_an_operator_sees_approvals_but_no_buttons(page, role_users) -> None:  # type: ignore[no-untyped-def]
    approval = make_approval(value={"action": "shutdown_cluster", "cluster": "dev-analytics-2",
                                    "region": "eu-west-1", "monthly_cost_usd": 18300,
                                    "description": "Shut down the idle dev cluster dev-analytics-2?"},
                             graph_name="finops")
    login(page, "otto")
    page.goto("/approvals/")
    expect(page.locator(f"#approval-{approval.id}")).to_be_visible()
    expect(page.get_by_role("button", name="Approve selected")).to_have_count(0)
    expect(page.locator("#approval-rows input[type=checkbox]")).to_have_count(0)
    expect(page.get_by_role("button", name="Claim")).to_have_count(0)

    page.get_by_role("link", name="shutdown_cluster", exact=True).click()
    expect(page.locator(".args-table")).to_contain_text("dev-analytics-2")
    expect(page.locator("#decision button")).to_have_count(0)
    expect(page.locator("#decision")).to_contain_text("deciding them needs the reviewer or admin role")
    # The keyboard shortcut finds no button either.
    page.keyboard.press("a")
    screenshot(page, "approvals-detail-operator")

    # On any page the top bar's count follows new approvals live, and screen readers hear of them.
    expect(page.locator("#nav-approvals-count")).to_have_text("1")
    make_approval(value="Deploy on Friday?", node="deploy")
    # As the runner does after commit; from a thread of its own, since Playwright's loop runs in this one.
    announcer = threading.Thread(target=live.announce_approvals_changed)
    announcer.start()
    announcer.join(timeout=10)
    expect(page.locator("#nav-approvals-count")).to_have_text("2")
    expect(page.locator("#live-announcer")).to_have_text("New approval: deploy (t_mail)")
    assert Approval.objects.get(id=approval.id).is_pending
    assert page.js_errors == []


def test_enter_in_an_edit_field_approves_the_edited_call_not_the_original(page, role_users) -> None:  # type: ignore[no-untyped-def]
    # Implicit submission (Enter in a text field) clicks the form's first submit button.
    value = {**HITL_VALUE, "review_configs": [{**HITL_VALUE["review_configs"][0], "args_schema": EMAIL_SCHEMA}]}
    approval = make_approval(value=value)
    login(page, "rita")
    page.goto(f"/approvals/{approval.id}/")
    page.keyboard.press("e")
    to = page.get_by_label("To:", exact=True)
    expect(to).to_be_focused()
    to.fill("bob@example.com")
    to.press("Enter")

    expect(page.locator(".outcome")).to_contain_text("Edited by you")
    approval.refresh_from_db()
    [decision] = approval.resume_value["decisions"]
    assert decision["type"] == "edit"
    assert decision["edited_action"]["args"]["to"] == "bob@example.com"
    assert decision["edited_action"]["args"]["subject"] == "Q3 report"

    # The "a" key presses the Approve the reviewer sees: the plain one, or, while editing, the edit.
    plain = make_approval(value=value)
    page.goto(f"/approvals/{plain.id}/")
    page.keyboard.press("a")
    expect(page.locator(".outcome")).to_contain_text("Approved by you")
    plain.refresh_from_db()
    assert plain.resume_value == {"decisions": [{"type": "approve"}]}
    second = make_approval(value=value)
    page.goto(f"/approvals/{second.id}/")
    page.keyboard.press("e")
    page.get_by_label("To:", exact=True).fill("carol@example.com")
    page.locator("h1").click()
    page.keyboard.press("a")
    expect(page.locator(".outcome")).to_contain_text("Edited by you")
    second.refresh_from_db()
    assert second.resume_value["decisions"][0]["edited_action"]["args"]["to"] == "carol@example.com"
    assert page.js_errors == []


def test_hostile_text_from_a_graph_is_shown_as_text_on_the_approval_page_and_in_the_inbox(page, role_users) -> None:  # type: ignore[no-untyped-def]
    state = {"messages": [{"type": "human", "content": "Post the launch note."},
                          {"type": "ai", "content": HOSTILE}],
             "draft": HOSTILE}
    value = {"action_requests": [{"name": "publish", "args": {"text": HOSTILE}, "description": HOSTILE}],
             "review_configs": [{"action_name": "publish", "allowed_decisions": ["approve", "edit", "reject"]}]}
    approval = make_approval(execution=make_execution(state=state), value=value)

    def untouched() -> None:
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.__x") == "undefined"

    login(page, "rita")
    page.goto(f"/approvals/{approval.id}/")
    card = page.locator("#action-0")
    expect(card.locator(".action-desc")).to_have_text(HOSTILE)
    expect(card.locator(".args-table td")).to_have_text(HOSTILE)
    conversation = page.locator(".why-card").filter(has_text="The conversation so far")
    expect(conversation.locator(".bubble-ai")).to_contain_text(HOSTILE)
    page.locator(".state-card > summary").click()
    expect(page.locator(".state-card")).to_contain_text(HOSTILE)
    page.keyboard.press("e")  # the edit form holds it too, as the text of its field
    expect(page.locator("#edit-0 textarea")).to_have_value(re.compile(re.escape("<script>window.__x=1</script>")))
    untouched()

    page.goto("/approvals/")
    row = page.locator(f"#approval-{approval.id}")
    expect(row).to_contain_text("text: <script>window.__x=1</script>")
    # A row that arrives live over the WebSocket is text too.
    second = make_approval(value={"action": HOSTILE, "note": HOSTILE})
    announcer = threading.Thread(target=live.announce_approvals_changed)
    announcer.start()
    announcer.join(timeout=10)
    expect(page.locator(f"#approval-{second.id} .action-name")).to_have_text(HOSTILE)
    expect(page.locator("#live-announcer")).to_contain_text(HOSTILE)
    untouched()
    assert page.js_errors == []
