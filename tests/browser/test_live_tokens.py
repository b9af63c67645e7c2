"""An LLM message grows on the page as it is generated (issue 13, part 2): the execution page, and
the approval page of a run that goes on generating after its decision. A real worker runs the graph
with a slow streaming offline model; headless Chromium watches the tokens arrive from the event log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from approvals.models import Approval
from approvals.services import approval_decide
from orchestrator import services
from orchestrator.models import Execution
from tests.browser.conftest import login
from tests.services import Proc, start_worker, wait_for
from traces.models import Step

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]
TIMEOUT = 60


@pytest.fixture(scope="module")
def slow_worker(django_db_setup, django_db_blocker) -> Iterator[Proc]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        proc = start_worker("browser-tokens", concurrency=2, LOOPGATE_OFFLINE_TOKEN_DELAY_MS="150")
    yield proc
    proc.kill()


def _ran(execution_id, node: str) -> bool:  # type: ignore[no-untyped-def]
    return any(node in step.nodes for step in Step.objects.filter(execution_id=execution_id))


def _grows(page) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Two readings of the message being generated: the first one shown, then a longer one."""
    box, text = page.locator("#live-message"), page.locator("#live-message .live-message-text")
    expect(box).to_be_visible(timeout=TIMEOUT * 1000)
    first = text.text_content() or ""
    page.wait_for_function("n => (document.querySelector('#live-message .live-message-text').textContent || '')"
                           ".length > n", arg=len(first), timeout=TIMEOUT * 1000)
    return first, text.text_content() or ""


def test_the_execution_page_shows_an_llm_message_growing_before_its_step_ends(page, role_users, slow_worker) -> None:  # type: ignore[no-untyped-def]
    execution = services.execution_start(graph_name="t_chatty", input={"topic": "owls"}, user=role_users["operator"])
    login(page, "otto")
    page.goto(f"/executions/{execution.id}/")
    first, later = _grows(page)
    assert not _ran(execution.id, "write")  # the step has not ended
    assert later.startswith(first) and len(later) > len(first)
    expect(page.locator("#live-message")).to_contain_text("in write")

    approval = wait_for(lambda: Approval.objects.filter(execution_id=execution.id).first(), timeout=TIMEOUT,
                        what="the approval")
    draft = Execution.objects.get(id=execution.id).state["draft"]
    assert first != draft and draft.startswith(later)  # what the page showed were parts of the answer
    expect(page.locator("#live-message")).to_be_hidden()  # the answer is whole: the step shows it now


def test_the_approval_page_shows_the_answer_growing_once_the_run_goes_on(page, role_users, slow_worker) -> None:  # type: ignore[no-untyped-def]
    execution = services.execution_start(graph_name="t_chatty", input={"topic": "bats"}, user=role_users["operator"])
    approval = wait_for(lambda: Approval.objects.filter(execution_id=execution.id).first(), timeout=TIMEOUT,
                        what="the approval")
    login(page, "rita")
    page.goto(f"/approvals/{approval.id}/")
    expect(page.locator("#live-message")).to_be_hidden()  # nothing is being generated while it waits
    approval_decide(approval_id=approval.id, user=role_users["reviewer"], decisions=[{"type": "approve"}])
    first, later = _grows(page)
    assert not _ran(execution.id, "finish")
    expect(page.locator("#live-message")).to_contain_text("in finish")
    final = wait_for(lambda: Execution.objects.filter(id=execution.id, status="succeeded").first(),
                     timeout=TIMEOUT, what="the run to end").state["final"]
    assert later.startswith(first) and final.startswith(later) and first != final
