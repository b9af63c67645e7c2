"""The chat page (LangGraph's React ``useStream`` hook, bundled in static/chat/chat.js) in a real
browser against live workers: a message, its reply growing token by token, the graph's question,
Approve, the answer; hostile text stays text.

Screenshot: docs/screenshots/chat.png.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from approvals.models import Approval
from orchestrator.models import Execution
from tests.browser.conftest import login, screenshot
from tests.escaping import HOSTILE
from tests.services import Proc, start_worker, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]
TIMEOUT = 60_000
NOTE_ID = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "lg_note"))
DRAFT = "You wrote: “{}”. I drafted a note for the team: let us meet at noon to settle it."
SENT = "Sent. The team has your note about “the launch” and meets at noon."

# Every text an agent bubble shows, in order, as the page renders it: tokens arriving show as
# texts that grow to the final one.
RECORD_AGENT_TEXTS = """() => {
  window.__agentTexts = [];
  const note = () => document.querySelectorAll('.bubble-ai .bubble-text').forEach((el) => {
    const seen = window.__agentTexts;
    if (seen[seen.length - 1] !== el.textContent) seen.push(el.textContent);
  });
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker) -> Iterator[Proc]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        proc = start_worker("browser-chat", concurrency=2)
    yield proc
    proc.kill()


def grew_to(texts: list[str], final: str) -> bool:
    """Some text shown before ``final`` was a part of it: the reply arrived in pieces."""
    return any(text and text != final and final.startswith(text) for text in texts) and final in texts


def test_a_user_sees_the_reply_stream_approves_the_agents_question_and_reads_the_answer(page, role_users, worker):  # type: ignore[no-untyped-def]
    login(page, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    expect(page.locator("main h1")).to_have_text("Chat")
    page.get_by_label("Graph").select_option(label="lg_note")
    page.evaluate(RECORD_AGENT_TEXTS)

    page.get_by_label("Message").fill("the launch")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".bubble-human .bubble-text")).to_have_text("the launch")
    question = page.locator(".chat-interrupt")
    expect(question).to_be_visible(timeout=TIMEOUT)
    expect(question).to_contain_text("send_note")
    expect(question).to_contain_text("Send this note to the team?")
    expect(question.locator("td")).to_have_text(DRAFT.format("the launch"))
    expect(page.locator(".bubble-ai .bubble-text")).to_have_text([DRAFT.format("the launch")])
    assert grew_to(page.evaluate("window.__agentTexts"), DRAFT.format("the launch"))
    expect(page.get_by_label("Message")).to_be_disabled()  # the question comes first
    screenshot(page, "chat")

    # A reload shows the same conversation, still waiting (the thread is in the address).
    page.reload()
    expect(page.get_by_label("Graph")).to_have_value(NOTE_ID)
    expect(question.locator("td")).to_have_text(DRAFT.format("the launch"))
    expect(page.locator(".bubble .bubble-text")).to_have_text(["the launch", DRAFT.format("the launch")])
    run_link = page.locator(".chat-run a")
    expect(run_link).to_have_attribute("href", re.compile(r"^/executions/[0-9a-f-]{36}/$"))
    page.evaluate(RECORD_AGENT_TEXTS)

    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".bubble-ai .bubble-text").last).to_have_text(SENT, timeout=TIMEOUT)
    expect(question).to_have_count(0)
    assert grew_to(page.evaluate("window.__agentTexts"), SENT)
    expect(page.get_by_label("Message")).to_be_enabled()

    # One conversation, one execution on the thread; the Approve was a reviewer's decision.
    execution = Execution.objects.get(graph_name="lg_note")
    assert execution.status == "succeeded" and execution.created_by.username == "alice"
    approval = Approval.objects.get(execution=execution)
    assert (approval.status, approval.decided_by.username) == ("approved", "alice")
    expect(run_link).to_have_attribute("href", f"/executions/{execution.id}/")

    # Hostile text, in the message and in the agent's reply and question, stays text.
    page.get_by_label("Message").fill(HOSTILE)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".bubble-human .bubble-text").last).to_have_text(HOSTILE)
    expect(question.locator("td")).to_have_text(DRAFT.format(HOSTILE), timeout=TIMEOUT)
    expect(page.locator(".bubble-ai .bubble-text").last).to_have_text(DRAFT.format(HOSTILE))
    assert page.evaluate("window.__x") is None
    expect(page.locator("main img, main script")).to_have_count(0)


def test_a_reviewer_cannot_start_a_conversation(page, role_users):  # type: ignore[no-untyped-def]
    login(page, "rita")
    page.goto("/chat/")
    expect(page.get_by_label("Graph")).to_be_visible()
    expect(page.get_by_label("Message")).to_be_disabled()
    expect(page.get_by_label("Message")).to_have_attribute("placeholder", "Only operators and admins start conversations.")


def test_closing_the_tab_while_the_reply_streams_lets_the_run_go_on(page, role_users, worker):  # type: ignore[no-untyped-def]
    login(page, "otto")
    page.goto("/chat/?graph=lg_note")
    expect(page.get_by_label("Graph")).to_have_value(NOTE_ID)
    page.get_by_label("Message").fill("the budget")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".bubble-ai .bubble-text")).to_contain_text("You wrote", timeout=TIMEOUT)
    page.close()  # mid-reply: the stream is cut, the run is not

    approval = wait_for(lambda: Approval.objects.filter(execution__graph_name="lg_note", status="pending").first(),
                        timeout=TIMEOUT / 1000, what="the run to reach its question")
    execution = Execution.objects.get(id=approval.execution_id)  # type: ignore[attr-defined]
    assert execution.status == "interrupted"
