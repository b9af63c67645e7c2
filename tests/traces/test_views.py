"""The executions list and the execution page through the test client, for every role."""

from __future__ import annotations

import datetime
import json
import re

from django.urls import reverse
from django.utils import timezone

from approvals.models import Approval
from orchestrator.models import Execution
from tests.base import PageTestCase
from tests.traces.builders import HOSTILE, make_execution, make_llm_step, make_steps
from traces.models import Span

Status = Execution.Status


class ExecutionListViewTests(PageTestCase):
    URL = reverse("traces:executions")

    def rows(self, response) -> list[str]:  # type: ignore[no-untyped-def]
        return re.findall(r'<tr id="execution-([0-9a-f-]{36})"', response.content.decode())

    def test_every_column_a_live_socket_and_a_start_button_for_those_who_may_start(self) -> None:
        e = make_execution(created_by=self.users["operator"], tokens_used=1234, token_budget=20_000, step_count=7)
        self.login("reviewer")
        response = self.client.get(self.URL)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(self.rows(response), [str(e.id)])
        self.assertContains(response, 'class="badge badge-succeeded"')
        self.assertContains(response, "@3f9c2a1b")
        self.assertContains(response, "otto")
        self.assertContains(response, "1,234 / 20,000")
        self.assertContains(response, 'ws-connect="/ws/executions/"')
        # Reviewers cannot start executions: no "Start…" that leads to a page without forms.
        self.assertNotContains(response, ">Start…</a>")
        self.login("operator")
        self.assertContains(self.client.get(self.URL), f'<a class="btn btn-primary" href="{reverse("graphs")}">Start…</a>',
                            html=True)

    def test_filters_by_graph_status_date_and_text(self) -> None:
        old = make_execution(graph_name="finops", status=Status.FAILED, created_by=self.users["admin"])
        Execution.objects.filter(id=old.id).update(created_at=timezone.now() - datetime.timedelta(days=10))
        seed = make_execution(graph_name="seed", status=Status.RUNNING, created_by=self.users["operator"])
        research = make_execution(graph_name="deep_research", status=Status.SUCCEEDED, created_by=self.users["operator"])
        self.login("operator")
        today = timezone.localdate().isoformat()
        cases = {
            "graph=finops": [old.id],
            "status=running": [seed.id],
            f"since={today}": [research.id, seed.id],
            f"until={(timezone.localdate() - datetime.timedelta(days=5)).isoformat()}": [old.id],
            "q=alice": [old.id],
            f"q={str(research.id)[:8]}": [research.id],
            "q=deep_res": [research.id],
            "graph=seed&status=failed": [],
        }
        for query, expected in cases.items():
            with self.subTest(query=query):
                response = self.client.get(f"{self.URL}?{query}")
                self.assertEqual(response.status_code, 200)
                self.assertEqual(self.rows(response), [str(i) for i in expected])
        response = self.client.get(f"{self.URL}?graph=seed&status=failed")
        self.assertContains(response, "No executions match these filters.")

    def test_a_bad_filter_value_is_shown_not_a_server_error(self) -> None:
        make_execution()
        self.login("operator")
        response = self.client.get(f"{self.URL}?status=exploded&since=yesterday")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Some filters were ignored")
        self.assertEqual(len(self.rows(response)), 1)

    def test_pages_of_twenty_five_newest_first(self) -> None:
        made = [make_execution() for _ in range(30)]
        for i, e in enumerate(made):
            Execution.objects.filter(id=e.id).update(created_at=timezone.now() - datetime.timedelta(minutes=i))
        self.login("admin")
        first = self.client.get(self.URL)
        self.assertEqual(self.rows(first), [str(e.id) for e in made[:25]])
        self.assertContains(first, "1–25 of 30")
        self.assertContains(first, 'rel="next" href="?page=2"')
        second = self.client.get(f"{self.URL}?status=succeeded&page=2")
        self.assertEqual(self.rows(second), [str(e.id) for e in made[25:]])
        self.assertContains(second, 'href="?status=succeeded&amp;page=1"')

    def test_htmx_gets_only_the_results(self) -> None:
        make_execution()
        self.login("operator")
        response = self.client.get(f"{self.URL}?status=succeeded", HTTP_HX_REQUEST="true")
        self.assertTrue(response.content.decode().lstrip().startswith('<div id="executions-results">'))
        self.assertNotContains(response, "<html")

    def test_a_user_without_a_role_sees_no_executions(self) -> None:
        make_execution()
        self.login("outsider")
        response = self.client.get(self.URL)
        self.assertEqual(self.rows(response), [])
        self.assertContains(response, "You cannot see executions yet.")


class ExecutionPageTests(PageTestCase):
    def url(self, e: Execution, name: str = "execution", *args) -> str:  # type: ignore[no-untyped-def]
        return reverse(f"traces:{name}", args=[e.id, *args])

    def test_the_header_shows_status_version_who_timing_tokens_cost_and_waiting_approvals(self) -> None:
        e = make_execution(status=Status.INTERRUPTED, created_by=self.users["operator"], tokens_used=17_400,
                           tokens_reserved=1_200, token_budget=20_000, finished_at=None)
        make_llm_step(e)
        approval = Approval.objects.create(execution=e, interrupt_id="i-1", node="send_email", payload={"to": "x"})
        Approval.objects.create(execution=e, interrupt_id="i-2", node="old", status=Approval.Status.APPROVED)
        self.login("reviewer")
        response = self.client.get(self.url(e))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'class="badge badge-interrupted"')
        self.assertContains(response, "@3f9c2a1b7d4e")
        self.assertContains(response, "otto")
        self.assertContains(response, 'aria-valuenow="17400"')
        self.assertContains(response, "meter-warn")
        self.assertContains(response, "+ 1,200 reserved")  # held for calls in flight, beside what was spent
        self.assertContains(response, "$0.0001")  # 412 in + 38 out at gpt-4o-mini prices
        self.assertContains(response, "1 approval waiting")
        self.assertContains(response, f'href="/approvals/{approval.id}/"')
        self.assertNotContains(response, ">old<")
        self.assertContains(response, f'ws-connect="/ws/executions/{e.id}/"')
        self.assertContains(response, "vendor/mermaid-11.17.2.min.js")
        self.assertContains(response, '<pre class="mermaid"')
        # Reviewers read but do not cancel.
        self.assertNotContains(response, self.url(e, "cancel"))

    def test_a_finished_execution_does_not_open_a_socket(self) -> None:
        e = make_execution()
        self.login("operator")
        self.assertNotContains(self.client.get(self.url(e)), f'ws-connect="/ws/executions/{e.id}/"')

    def test_a_thousand_steps_open_one_page_at_a_time(self) -> None:
        e = make_execution()
        steps = make_steps(e, 1000)
        self.login("operator")
        response = self.client.get(self.url(e))
        html = response.content.decode()
        self.assertEqual(html.count('<details class="step'), 100)
        self.assertIn(f'id="step-{steps[99].id}"', html)
        self.assertNotIn(f'id="step-{steps[100].id}"', html)
        self.assertContains(response, "Show 900 more steps")
        more = self.client.get(f"{self.url(e, 'steps')}?after={steps[99].id}", HTTP_HX_REQUEST="true")
        page = more.content.decode()
        self.assertEqual(page.count('<details class="step'), 100)
        self.assertIn('hx-swap-oob="beforeend:#timeline-rows"', page)
        self.assertIn(f'id="step-{steps[100].id}"', page)
        self.assertIn("Show 800 more steps", page)
        last = self.client.get(f"{self.url(e, 'steps')}?after={steps[949].id}", HTTP_HX_REQUEST="true")
        self.assertEqual(last.content.decode().count('<details class="step'), 50)
        self.assertIn('data-complete="1"', last.content.decode())

    def test_a_row_shows_the_step_its_nodes_changes_tokens_bytes_and_duration(self) -> None:
        e = make_execution()
        step = make_steps(e, 1)[0]
        self.login("operator")
        response = self.client.get(self.url(e))
        self.assertContains(response, '<span class="node-chip">researcher</span>', html=True)
        self.assertContains(response, "+1 added")
        self.assertContains(response, ">100<")
        self.assertContains(response, "512 B")
        self.assertContains(response, "40 ms")
        self.assertContains(response, f'hx-get="{self.url(e, "step", step.id)}"')

    def test_the_node_filter_shows_only_that_nodes_steps(self) -> None:
        e = make_execution()
        make_steps(e, 6)
        self.login("operator")
        response = self.client.get(f"{self.url(e)}?node=supervisor")
        self.assertEqual(response.content.decode().count('<details class="step'), 3)
        self.assertContains(response, 'data-node="supervisor"')

    def test_an_opened_step_shows_its_diff_its_update_and_its_calls(self) -> None:
        e = make_execution(graph_name="deep_research")
        step = make_llm_step(e, content="Find engines", answer="Temporal and Celery", tool_result="3 results")
        self.login("operator")
        response = self.client.get(self.url(e, "step", step.id), HTTP_HX_REQUEST="true")
        self.assertEqual(response.status_code, 200)
        html = response.content.decode()
        self.assertNotIn("<html", html)
        self.assertIn("notes[0]", html)  # the diff
        self.assertIn("Temporal and Celery", html)
        # The LLM span: model, tokens in and out, latency, the messages as chat bubbles.
        self.assertIn('class="span span-llm', html)
        self.assertIn("gpt-4o-mini", html)
        self.assertIn("412 in · 38 out", html)
        self.assertIn("600 ms", html)
        self.assertIn('class="bubble bubble-system"', html)
        self.assertIn('class="bubble bubble-human"', html)
        self.assertIn('<strong class="mono">search</strong>', html)  # the tool call it asked for
        # The tool span: arguments and result.
        self.assertIn('class="span span-tool', html)
        self.assertIn("3 results", html)
        # A waterfall: bars placed by time.
        self.assertRegex(html, r'class="span-bar" style="margin-left: [0-9.]+%; width: [0-9.]+%"')
        # Without htmx the same step is a page of its own.
        page = self.client.get(self.url(e, "step", step.id))
        self.assertContains(page, "<html")
        self.assertContains(page, "Step 1 · search")

    def test_a_failed_execution_shows_its_error_and_traceback(self) -> None:
        e = make_execution(status=Status.FAILED, error={
            "type": "ValueError", "message": "the reactor overheated", "node": "explode",
            "reason": "ValueError in node explode: the reactor overheated",
            "traceback": 'Traceback (most recent call last):\n  File "graphs.py", line 3\nValueError: the reactor overheated'})
        Span.objects.create(execution=e, kind=Span.Kind.NODE, name="explode", status=Span.Status.ERROR, step=2,
                            error={"message": "the reactor overheated"}, started_at=timezone.now(),
                            ended_at=timezone.now())
        self.login("operator")
        response = self.client.get(self.url(e))
        self.assertContains(response, "ValueError in node explode: the reactor overheated")
        self.assertContains(response, 'id="execution-error"')
        self.assertContains(response, "Traceback (most recent call last)")
        self.assertContains(response, 'class="span span-node span-status-error"')

    def test_export_is_the_whole_trace_as_a_json_download(self) -> None:
        e = make_execution(graph_name="deep_research", tokens_used=450)
        step = make_llm_step(e)
        self.login("reviewer")
        response = self.client.get(self.url(e, "export"))
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertIn(f'loopgate-deep_research-{e.short_id}.json', response["Content-Disposition"])
        data = json.loads(response.content)
        self.assertEqual(data["execution"]["id"], str(e.id))
        self.assertEqual([s["id"] for s in data["steps"]], [step.id])
        self.assertEqual([s["kind"] for s in data["spans"]], ["node", "llm", "tool"])
        llm = data["spans"][1]
        self.assertEqual((llm["input_tokens"], llm["output_tokens"], llm["model"]), (412, 38, "gpt-4o-mini"))
        self.assertEqual(llm["parent_id"], data["spans"][0]["id"])
        raw = json.loads(self.client.get(f"{self.url(e, 'step', step.id)}?format=json").content)
        self.assertEqual([s["kind"] for s in raw["spans"]], ["node", "llm", "tool"])

    def test_only_operators_and_admins_cancel(self) -> None:
        e = make_execution(status=Status.QUEUED, finished_at=None)
        self.login("reviewer")
        self.assertEqual(self.client.post(self.url(e, "cancel")).status_code, 403)
        self.login("operator")
        page = self.client.get(self.url(e))
        self.assertContains(page, f'action="{self.url(e, "cancel")}"')
        response = self.client.post(self.url(e, "cancel"), HTTP_HX_REQUEST="true")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'id="execution-header"')
        e.refresh_from_db()
        self.assertEqual(e.status, Status.CANCELLED)
        again = self.client.post(self.url(e, "cancel"))
        self.assertRedirects(again, self.url(e), fetch_redirect_response=False)

    def test_outsiders_and_strangers_get_nothing(self) -> None:
        e = make_execution()
        make_steps(e, 1)
        self.login("outsider")
        for name in ("execution", "export", "lineage", "state", "steps"):
            with self.subTest(name=name):
                self.assertEqual(self.client.get(self.url(e, name)).status_code, 404)
        self.client.logout()
        response = self.client.get(self.url(e))
        self.assertEqual(response.status_code, 302)
        self.assertIn("/login/", response["Location"])

    def test_a_reviewer_cannot_fork(self) -> None:
        e = make_execution()
        self.login("reviewer")
        response = self.client.post(self.url(e, "fork"), {"checkpoint": "x", "state": "{}"})
        self.assertEqual(response.status_code, 403)


class UntrustedTextTests(PageTestCase):
    """State, LLM messages, tool results and errors are data: escaped, never markup."""

    def test_hostile_values_in_state_messages_diff_and_errors_are_shown_as_text(self) -> None:
        e = make_execution(
            graph_name="deep_research", status=Status.FAILED, input={"task": HOSTILE}, state={"report": HOSTILE},
            error={"type": "ValueError", "message": HOSTILE, "reason": HOSTILE, "node": HOSTILE,
                   "traceback": HOSTILE},
        )
        step = make_llm_step(e, content=HOSTILE, answer=HOSTILE, tool_result=HOSTILE)
        step.diff = [{"op": "change", "path": HOSTILE, "before": HOSTILE, "after": {HOSTILE: [HOSTILE]}}]
        step.nodes = [HOSTILE]
        step.save()
        self.login("operator")
        page = reverse("traces:execution", args=[e.id])
        for url, htmx in ((page, False),
                          (reverse("traces:step", args=[e.id, step.id]), True),
                          (reverse("traces:step", args=[e.id, step.id]), False),
                          (reverse("traces:executions"), False)):
            with self.subTest(url=url, htmx=htmx):
                response = self.client.get(url, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))
                html = response.content.decode()
                self.assertNotIn("<script>window.__x", html)
                self.assertNotIn("<img src=x", html)
                if url != reverse("traces:executions"):
                    self.assertIn("&lt;script&gt;window.__x=1&lt;/script&gt;", html)

    def test_a_long_value_is_cut_with_the_whole_one_click_away(self) -> None:
        e = make_execution(graph_name="deep_research")
        long_answer = "word " * 400
        step = make_llm_step(e, answer=long_answer)
        self.login("operator")
        html = self.client.get(reverse("traces:step", args=[e.id, step.id]), HTTP_HX_REQUEST="true").content.decode()
        self.assertIn("show all (2,000 characters)", html)
        self.assertIn(reverse("traces:step", args=[e.id, step.id]) + "?format=json", html)
