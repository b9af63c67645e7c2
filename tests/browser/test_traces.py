"""Traces in a real browser: Daphne serves the app, a Celery worker process runs the graphs,
headless Chromium watches.

- a running execution's page grows step by step without a reload (the WebSocket push);
- an operator forks a finished seed run at a middle step with an edited ``reports``; the fork
  finishes with the edit and its page names its parent;
- hostile text in state and in an LLM message stays text: ``window.__x`` is never set.

Screenshots: executions, execution-live, execution, execution-llm, execution-state, execution-lineage.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
from collections.abc import Iterator

import pytest
from django.db.models import F
from django.utils import timezone
from playwright.sync_api import expect

from orchestrator import registry, services
from orchestrator.models import Execution
from orchestrator.tasks import advance
from tests.browser.conftest import login, screenshot
from tests.services import Proc, start_worker, wait_for
from tests.traces.builders import HOSTILE, make_execution, make_llm_step, make_steps
from traces.models import Step

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]
TIMEOUT = 60
Status = Execution.Status


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker) -> Iterator[Proc]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        proc = start_worker("browser-traces", concurrency=2)
    yield proc
    proc.kill()


def finished(execution_id) -> Execution:  # type: ignore[no-untyped-def]
    return wait_for(lambda: Execution.objects.filter(id=execution_id, status__in=Execution.FINISHED).first(),
                    timeout=TIMEOUT, what="the execution to finish")  # type: ignore[return-value]


def test_a_running_executions_page_shows_new_steps_as_they_happen(page, role_users, worker, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Queued but not yet sent to the worker: the page is open before the first step.
    monkeypatch.setattr(services, "_queue_advance", lambda _id: None)
    execution = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 6, "sleep": 0.7},
                                         user=role_users["operator"])
    login(page, "otto")
    page.goto(f"/executions/{execution.id}/")
    expect(page.locator("#execution-header .badge")).to_have_text("queued")
    expect(page.locator("#timeline-empty")).to_contain_text("Queued")
    page.evaluate("window.__sameDocument = true")
    rows = page.locator("#timeline-rows details.step")
    expect(rows).to_have_count(0)

    advance.delay(str(execution.id))
    page.wait_for_function("document.querySelectorAll('#timeline-rows details.step').length >= 3", timeout=30_000)
    expect(page.locator("#execution-header .badge")).to_have_text("running")
    expect(page.locator("#timeline-now")).to_contain_text("Running")
    expect(page.locator("#timeline-empty")).to_have_count(0)
    screenshot(page, "execution-live")
    assert page.evaluate("window.__sameDocument") is True  # the rows came without a reload

    finished(execution.id)
    expect(page.locator("#execution-header .badge")).to_have_text("succeeded", timeout=15_000)
    expect(rows).to_have_count(Step.objects.filter(execution=execution).count(), timeout=15_000)
    steps = [n.strip() for n in rows.locator(".step-num").all_inner_texts()]
    assert steps == [str(s.step) for s in Step.objects.filter(execution=execution).order_by("id")]  # in order, once each
    # A pushed row opens like any other.
    rows.nth(2).locator("> summary").click()
    expect(rows.nth(2).locator(".step-detail")).to_contain_text("State diff")
    assert page.evaluate("window.__sameDocument") is True
    assert page.js_errors == []


def test_live_rows_land_in_step_order_whatever_order_the_pushes_arrive_in(page, role_users) -> None:  # type: ignore[no-untyped-def]
    from traces import live

    execution = make_execution(status=Status.RUNNING, finished_at=None)
    login(page, "otto")
    page.goto(f"/executions/{execution.id}/")
    rows = page.locator("#timeline-rows details.step")
    expect(rows).to_have_count(0)
    page.wait_for_function("document.querySelector('[ws-connect]') && window.htmx")
    page.wait_for_timeout(500)  # the socket is open
    steps = make_steps(execution, 4)
    def push() -> None:  # off Playwright's thread, whose event loop async_to_sync refuses
        for index in (2, 0, 3, 1):  # delivered out of order, as concurrent renders can deliver them
            live.announce_step(execution.id, steps[index].id)
            time.sleep(0.2)

    pusher = threading.Thread(target=push)
    pusher.start()
    pusher.join()
    expect(rows).to_have_count(4, timeout=15_000)
    shown = [int(x) for x in rows.evaluate_all("rows => rows.map(r => r.getAttribute('data-step-id'))")]
    assert shown == [s.id for s in steps]
    assert page.js_errors == []


def test_an_operator_forks_a_seed_run_at_a_middle_step_with_edited_reports(page, role_users, worker) -> None:  # type: ignore[no-untyped-def]
    parent = services.execution_start(graph_name="seed", input=registry.get_graph("seed").example_input,
                                      user=role_users["operator"])
    parent = finished(parent.id)
    assert parent.status == Status.SUCCEEDED
    middle = Step.objects.get(execution=parent, step=2)

    login(page, "otto")
    page.goto(f"/executions/{parent.id}/")
    row = page.locator(f"#step-{middle.id}")
    row.locator("> summary").click()
    row.get_by_role("link", name="Fork from here").click()
    page.wait_for_url(re.compile(r"/state/\?checkpoint="))
    expect(page.locator("#state-title")).to_have_text("State at step 2")

    editor = page.get_by_label("State (JSON)")
    state = json.loads(editor.input_value())
    assert state["reports"] == ["Research finding index: 0"]
    state["reports"] = ["Edited by otto: start from Temporal"]
    editor.fill(json.dumps(state, indent=2))
    screenshot(page, "execution-state")
    page.get_by_role("button", name="Start fork").click()

    page.wait_for_url(re.compile(r"/executions/[0-9a-f-]{36}/$"))
    fork = Execution.objects.get(parent=parent)
    assert page.url.endswith(f"/executions/{fork.id}/")
    expect(page.locator(".messages")).to_contain_text(f"Forked from step 2 of {parent.short_id}")
    parent_link = page.locator(".exec-parent").get_by_role("link", name=re.compile(parent.short_id))
    expect(parent_link).to_be_visible()
    expect(page.locator("#execution-header .badge").first).to_have_text("succeeded", timeout=TIMEOUT * 1000)

    fork.refresh_from_db()
    assert fork.status == Status.SUCCEEDED, fork.error
    assert fork.state["reports"] == ["Edited by otto: start from Temporal", "Research finding index: 1"]
    assert fork.forked_from_checkpoint == middle.checkpoint_id
    page.reload()
    expect(page.locator("#timeline-rows details.step").first).to_contain_text("edit")
    page.locator(".final-state > summary").click()
    expect(page.locator(".final-state")).to_contain_text("Edited by otto: start from Temporal")
    expect(page.locator(".trace-aside")).to_contain_text("Started from")
    screenshot(page, "execution-fork")

    page.get_by_role("link", name="Lineage").click()
    expect(page.locator(".lineage-tree")).to_contain_text(parent.short_id)
    expect(page.locator(".lineage-tree .is-current")).to_contain_text(fork.short_id)
    page.get_by_role("button", name="Compare side by side").click()
    expect(page.locator("#side-title")).to_contain_text("side by side")
    expect(page.locator(".compare-sides")).to_contain_text("Edited by otto")
    screenshot(page, "execution-lineage")
    parent_link = page.locator(".exec-parent").get_by_role("link", name=re.compile(parent.short_id))
    parent_link.click()
    page.wait_for_url(f"**/executions/{parent.id}/")
    assert page.js_errors == []


def test_hostile_text_in_state_and_in_an_llm_message_stays_text(page, role_users) -> None:  # type: ignore[no-untyped-def]
    execution = make_execution(graph_name="deep_research", input={"task": HOSTILE}, state={"report": HOSTILE},
                               created_by=role_users["operator"])
    step = make_llm_step(execution, content=HOSTILE, answer=HOSTILE, tool_result=HOSTILE)
    step.diff = [{"op": "add", "path": "report", "after": HOSTILE}]
    step.save()
    login(page, "otto")
    page.goto(f"/executions/{execution.id}/")
    page.locator(f"#step-{step.id} > summary").click()
    llm = page.locator("details.span-llm").first
    llm.locator("> summary").click()
    expect(llm.locator(".bubble-human")).to_contain_text(HOSTILE)
    expect(llm.locator(".bubble-ai").first).to_contain_text(HOSTILE)
    expect(page.locator(f"#step-{step.id} .diff")).to_contain_text(HOSTILE)
    expect(page.locator(".trace-aside")).to_contain_text(HOSTILE)
    page.locator(".final-state > summary").click()
    expect(page.locator(".final-state")).to_contain_text(HOSTILE)
    assert page.evaluate("() => window.__x") is None
    assert page.locator("main script").count() == 0
    assert page.locator("main img[src='x']").count() == 0
    assert page.js_errors == []


def test_screenshots_of_the_executions_list_and_an_execution(page, role_users, worker) -> None:  # type: ignore[no-untyped-def]
    research = services.execution_start(graph_name="deep_research",
                                        input=registry.get_graph("deep_research").example_input,
                                        user=role_users["operator"])
    seed = services.execution_start(graph_name="seed", input=registry.get_graph("seed").example_input,
                                    user=role_users["admin"])
    finops = services.execution_start(graph_name="finops", input=registry.get_graph("finops").example_input,
                                      user=role_users["operator"])
    boom = services.execution_start(graph_name="t_boom", input={"n": 0}, user=role_users["operator"])
    research, _seed, _boom = finished(research.id), finished(seed.id), finished(boom.id)
    wait_for(lambda: Execution.objects.filter(id=finops.id, status=Status.INTERRUPTED).exists(), timeout=TIMEOUT,
             what="finops to wait for its approval")
    now = timezone.now()
    for offset, execution_id in enumerate([boom.id, finops.id, seed.id, research.id]):
        shift = datetime.timedelta(minutes=6 * offset + 2)
        Execution.objects.filter(id=execution_id).update(
            created_at=F("created_at") - shift, started_at=F("started_at") - shift, finished_at=F("finished_at") - shift)
    over = make_execution(graph_name="deep_research", status=Status.BUDGET_EXCEEDED, tokens_used=20_310,
                          token_budget=20_000, step_count=11, created_by=role_users["admin"])
    cancelled = make_execution(graph_name="seed", status=Status.CANCELLED, tokens_used=0, step_count=3,
                               created_by=role_users["operator"])
    for execution, minutes in ((over, 95), (cancelled, 180)):
        Execution.objects.filter(id=execution.id).update(
            created_at=now - datetime.timedelta(minutes=minutes),
            started_at=now - datetime.timedelta(minutes=minutes),
            finished_at=now - datetime.timedelta(minutes=minutes - 3))
    make_execution(graph_name="t_counter", status=Status.QUEUED, started_at=None, finished_at=None,
                   created_by=role_users["operator"])

    login(page, "otto")
    page.goto("/executions/")
    expect(page.locator("#executions-rows tr")).to_have_count(7)
    screenshot(page, "executions")

    page.goto(f"/executions/{research.id}/")
    # The result first: what the run produced, above its trace.
    expect(page.locator("#outcome-title")).to_have_text("Result")
    screenshot(page, "execution-result")
    # The diagram draws the path it took: the edges it went along, with how often on the loop.
    diagram = page.locator("#graph-diagram svg")
    expect(diagram).to_be_visible()
    expect(diagram.locator(".edgeLabel", has_text="×")).not_to_have_count(0)
    page.locator("#graph-diagram").scroll_into_view_if_needed()
    screenshot(page, "execution-path")
    first_search = Step.objects.filter(execution=research, nodes=["search"]).order_by("step").first()
    row = page.locator(f"#step-{first_search.id}")
    row.locator("> summary").click()
    expect(row.locator(".diff")).to_be_visible()
    row.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -70)")
    screenshot(page, "execution")
    llm = row.locator("details.span-llm").first
    llm.locator("> summary").click()
    expect(llm.locator(".bubble-system")).to_be_visible()
    llm.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -60)")
    screenshot(page, "execution-llm")
    assert page.js_errors == []
