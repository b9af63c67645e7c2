"""The Graphs page and starting an execution from it, for every role."""

from __future__ import annotations

import json

from django.test import override_settings
from django.urls import reverse

from orchestrator import registry, services
from orchestrator.models import Execution
from tests.base import PageTestCase
from tests.factories import SEED_INPUT

START_URL = reverse("graph_start", args=["seed"])




class GraphViewTestCase(PageTestCase):
    fresh_registry = True  # the pages list the registered graphs


class GraphListViewTests(GraphViewTestCase):
    def test_an_operator_sees_each_graph_with_its_diagram_and_a_prefilled_start_form(self) -> None:
        self.login("operator")
        response = self.client.get(reverse("graphs"))
        self.assertEqual(response.status_code, 200)
        entry = registry.get_graph("seed")
        self.assertContains(response, 'id="graph-seed"')
        self.assertContains(response, f'<span class="mono badge" title="Graph version: a hash of its source">'
                                      f"{entry.version}</span>", html=True)
        self.assertContains(response, "A supervisor and a researcher in a loop.")
        self.assertContains(response, "2 nodes")
        # The mermaid text goes in escaped; mermaid reads the decoded textContent.
        self.assertContains(response, '<pre class="mermaid">')
        self.assertContains(response, "researcher --&gt; supervisor;")
        self.assertContains(response, "vendor/mermaid-11.17.2.min.js")
        self.assertContains(response, '<span class="mono">researcher → supervisor</span>')
        self.assertContains(response, '<span class="mono">supervisor → __end__</span> <span title="conditional edge">(if)</span>')
        self.assertContains(response, 'securityLevel: "strict"')
        self.assertContains(response, f'action="{START_URL}"')
        self.assertContains(response, "Start execution")
        example = json.dumps(entry.example_input, indent=2)
        self.assertEqual(response.context["cards"][0].form.initial["input"], example)
        self.assertContains(response, "&quot;task&quot;: &quot;Survey durable execution engines")

    def test_a_reviewer_sees_the_graphs_but_no_start_form(self) -> None:
        self.login("reviewer")
        response = self.client.get(reverse("graphs"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'id="graph-seed"')
        self.assertNotContains(response, f'action="{START_URL}"')
        self.assertContains(response, "Starting an execution needs the operator or admin role.")

    def test_with_examples_off_the_page_lists_only_the_deployments_graphs(self) -> None:
        self.login("operator")
        own = json.dumps({"graphs": {"mine": "tests.orchestrator.graphs:counter"}})
        with override_settings(LOOPGATE_EXAMPLES=False, LOOPGATE_GRAPHS=own):
            response = self.client.get(reverse("graphs"))
        self.assertEqual([card.entry.name for card in response.context["cards"]], ["mine"])
        self.assertContains(response, 'id="graph-mine"')
        self.assertNotContains(response, 'id="graph-seed"')
        self.assertNotContains(response, '<span class="badge">example</span>', html=True)

    def test_a_broken_entry_shows_its_error_on_its_card(self) -> None:
        self.login("admin")
        with override_settings(LOOPGATE_GRAPHS=json.dumps({"graphs": {"lost": "/nowhere/agent.py:graph"}})):
            response = self.client.get(reverse("graphs"))
        self.assertContains(response, 'id="graph-lost"')
        self.assertContains(response, "This graph cannot be loaded:")
        self.assertContains(response, "file not found: /nowhere/agent.py")
        self.assertNotContains(response, f'action="{reverse("graph_start", args=["lost"])}"')

    def test_an_unreadable_setting_is_shown_above_the_graphs(self) -> None:
        self.login("operator")
        with override_settings(LOOPGATE_GRAPHS='{"graphs": '):
            response = self.client.get(reverse("graphs"))
        self.assertContains(response, "LOOPGATE_GRAPHS cannot be read:")
        self.assertContains(response, 'id="graph-seed"')

    def test_an_anonymous_visitor_is_sent_to_log_in(self) -> None:
        response = self.client.get(reverse("graphs"))
        self.assertEqual(response.status_code, 302)
        self.assertTrue(response["Location"].startswith(reverse("login")))


class GraphStartViewTests(GraphViewTestCase):
    def post(self, data: dict[str, str], url: str = START_URL):  # type: ignore[no-untyped-def]
        # Nothing is queued: the on-commit callback that would reach Celery is captured, not run.
        with self.captureOnCommitCallbacks(execute=False) as self.callbacks:
            return self.client.post(url, data)

    def test_an_operator_starts_an_execution_and_is_sent_to_it(self) -> None:
        self.login("operator")
        data = {"task": "Find three papers", "reports": [], "iterations": 0, "is_complete": False}
        response = self.post({"input": json.dumps(data), "token_budget": "1200", "recursion_limit": "30"})
        execution = Execution.objects.get()
        self.assertRedirects(
            response, reverse("traces:execution", args=[execution.id]), fetch_redirect_response=False
        )
        self.assertEqual(execution.graph_name, "seed")
        self.assertEqual(execution.graph_version, registry.get_graph("seed").version)
        self.assertEqual(execution.input, data)
        self.assertEqual(execution.created_by, self.users["operator"])
        self.assertEqual(execution.token_budget, 1200)
        self.assertEqual(execution.recursion_limit, 30)
        self.assertEqual(execution.status, Execution.Status.QUEUED)
        queued = [c for c in self.callbacks if getattr(c, "func", None) is services._queue_advance]
        self.assertEqual(len(queued), 1)  # the worker is told after commit

    def test_empty_limits_take_the_defaults(self) -> None:
        self.login("admin")
        with self.settings(LOOPGATE_DEFAULT_TOKEN_BUDGET=777, LOOPGATE_DEFAULT_RECURSION_LIMIT=12):
            self.post({"input": json.dumps(SEED_INPUT), "token_budget": "", "recursion_limit": ""})
        execution = Execution.objects.get()
        self.assertEqual((execution.token_budget, execution.recursion_limit), (777, 12))

    def test_a_forged_post_by_a_reviewer_or_an_outsider_is_forbidden(self) -> None:
        for role in ("reviewer", "outsider"):
            with self.subTest(role):
                self.login(role)
                response = self.post({"input": '{"task": "t"}'})
                self.assertEqual(response.status_code, 403)
        self.assertFalse(Execution.objects.exists())

    def test_bad_json_is_422_with_a_message_and_starts_nothing(self) -> None:
        self.login("operator")
        response = self.post({"input": '{"task": "t",}'})
        self.assertEqual(response.status_code, 422)
        self.assertContains(response, "Not valid JSON: Expecting property name enclosed in double quotes",
                            status_code=422)
        self.assertContains(response, "{&quot;task&quot;: &quot;t&quot;,}", status_code=422)  # kept for fixing
        # Said at the top of the page too, not only ~2,000 px down inside the card.
        self.assertContains(response, '<li class="msg msg-error">seed was not started: see the errors in its form '
                                      'below.</li>', status_code=422, html=True)
        self.assertFalse(Execution.objects.exists())
        self.assertEqual(self.callbacks, [])

    def test_reloading_the_start_address_after_a_failed_start_opens_the_graphs_card(self) -> None:
        self.login("operator")
        response = self.client.get(START_URL)  # the address bar after a failed POST: never a bare 405
        self.assertRedirects(response, reverse("graphs") + "#graph-seed", fetch_redirect_response=False)
        self.assertFalse(Execution.objects.exists())

    def test_input_that_is_not_an_object_or_does_not_fit_the_schema_is_422(self) -> None:
        self.login("operator")
        for text, message in (
            ("[1, 2]", "The input must be a JSON object"),
            ('{"taks": "typo"}', "taks: Unknown input key &#x27;taks&#x27;"),
            ('{"iterations": "three"}', "iterations: Expected integer, got string."),
        ):
            with self.subTest(text):
                response = self.post({"input": text})
                self.assertContains(response, message, status_code=422)
        response = self.post({"input": "{}", "recursion_limit": "0"})
        self.assertContains(response, "greater than or equal to 1", status_code=422)
        self.assertFalse(Execution.objects.exists())

    def test_an_htmx_post_gets_the_card_back_or_a_redirect_header(self) -> None:
        self.login("operator")
        with self.captureOnCommitCallbacks(execute=False):
            response = self.client.post(START_URL, {"input": "nope"}, headers={"HX-Request": "true"})
        self.assertEqual(response.status_code, 422)
        self.assertTemplateUsed(response, "orchestrator/partials/graph_card.html")
        self.assertTemplateNotUsed(response, "orchestrator/graphs.html")
        with self.captureOnCommitCallbacks(execute=False):
            response = self.client.post(START_URL, {"input": json.dumps(SEED_INPUT)}, headers={"HX-Request": "true"})
        self.assertEqual(response["HX-Redirect"], reverse("traces:execution", args=[Execution.objects.get().id]))

    def test_an_unknown_graph_is_404(self) -> None:
        self.login("operator")
        response = self.post({"input": "{}"}, url=reverse("graph_start", args=["nope"]))
        self.assertEqual(response.status_code, 404)

    def test_a_broken_graph_is_409_with_its_reason(self) -> None:
        self.login("operator")
        with override_settings(LOOPGATE_GRAPHS=json.dumps({"graphs": {"lost": "/nowhere/agent.py:graph"}})):
            response = self.post({"input": "{}"}, url=reverse("graph_start", args=["lost"]))
        self.assertContains(response, "Graph &#x27;lost&#x27; cannot be loaded: file not found", status_code=409)
        self.assertFalse(Execution.objects.exists())

    def test_only_post_starts(self) -> None:
        self.login("operator")
        self.assertEqual(self.client.get(START_URL).status_code, 302)  # to the graph's card
        self.assertEqual(self.client.put(START_URL).status_code, 405)


class NodeCountTests(PageTestCase):
    def test_list_graphs_counts_nodes_as_the_graphs_page_does(self) -> None:
        import io
        import re

        from django.core.management import call_command

        out = io.StringIO()
        call_command("list_graphs", stdout=out)
        listed = dict(re.findall(r"^\s+(\S+)\s+@\S+\s+(\d+) nodes?", out.getvalue(), re.MULTILINE))
        self.login("operator")
        page = self.client.get(reverse("graphs")).content.decode()
        for name, count in listed.items():
            card = page[page.index(f'id="graph-{name}"'):]
            shown = re.search(r"(\d+) nodes?", card)
            assert shown is not None and shown.group(1) == count, (name, count)
        assert {"seed", "finops", "deep_research"} <= set(listed)
