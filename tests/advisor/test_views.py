"""The advisor's panels on the Graphs page and execution pages, and dismissing a finding there."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from advisor.models import Dismissal
from orchestrator.models import Execution
from tests.advisor.test_findings import SEED_INPUT
from tests.base import PageTransactionTestCase
from tests.escaping import HOSTILE, AssertSafeMixin
from traces.models import Span

KEY = "whole_state:reports"


class AdvisorPageTestCase(AssertSafeMixin, PageTransactionTestCase):
    @pytest.fixture(autouse=True)
    def _graphs(self, run: Callable[..., Execution]) -> None:
        self.start = run

    def card(self, html: str, graph: str) -> str:
        """The part of the Graphs page that is one graph's card."""
        start = html.index(f'id="graph-{graph.replace("_", "_")}"')
        end = html.find("</article>", start)
        return html[start:end]

    def dismiss(self, key: str = KEY, **extra: str) -> object:
        return self.client.post("/advisor/graphs/a_seed_long/dismiss/", {"key": key, "title": "reports grows", **extra},
                                HTTP_HX_REQUEST="true")


class GraphsPageTests(AdvisorPageTestCase):
    def test_each_graph_card_shows_its_findings_with_the_growth_and_the_link(self) -> None:
        execution = self.start("a_seed_long", SEED_INPUT)
        self.start("a_tidy", {"task": "t", "reports": [], "iterations": 0})
        html = self.login("operator").get("/graphs/").content.decode()
        card = self.card(html, "a_seed_long")
        assert "The state channel “reports” is rewritten whole at every step" in card
        assert "Bytes written per step" in card and f"/executions/{execution.id}/steps/" in card
        assert 'name="key" value="whole_state:reports"' in card and ">Dismiss</button>" in card
        tidy = self.card(html, "a_tidy")
        assert "Nothing to point out" in tidy and "finding" not in tidy.split("Advisor", 1)[1].split("Nothing")[0]
        assert "Advice appears here once the graph has run" in self.card(html, "a_free_text")

    def test_reviewers_see_findings_but_no_dismiss_button_and_may_not_post_one(self) -> None:
        self.start("a_seed_long", SEED_INPUT)
        self.login("reviewer")
        card = self.card(self.client.get("/graphs/").content.decode(), "a_seed_long")
        assert "rewritten whole" in card and "Dismiss</button>" not in card
        assert self.dismiss().status_code == 403
        assert not Dismissal.objects.exists()


class DismissTests(AdvisorPageTestCase):
    def test_an_operator_dismisses_a_finding_for_the_graph_and_undoes_it(self) -> None:
        execution = self.start("a_seed_long", SEED_INPUT)
        self.login("operator")
        response = self.dismiss()
        assert response.status_code == 200
        panel = response.content.decode()
        assert panel.startswith('<section class="advisor" id="advisor-graph-a_seed_long"')
        assert "rewritten whole at every step" not in panel.split("dismissed for this graph")[0]
        assert "1 dismissed for this graph" in panel and "Dismissed by otto" in panel
        dismissal = Dismissal.objects.get()
        assert (dismissal.graph_name, dismissal.key, dismissal.dismissed_by) == ("a_seed_long", KEY,
                                                                               self.users["operator"])
        # Dismissed per graph: the execution's page no longer lists it either, only as dismissed.
        page = self.client.get(f"/executions/{execution.id}/").content.decode()
        assert "1 dismissed for this graph" in page and "rewritten whole at every step" not in page

        undo = self.client.post("/advisor/graphs/a_seed_long/restore/",
                                {"key": KEY, "execution": str(execution.id)}, HTTP_HX_REQUEST="true")
        assert undo.status_code == 200 and f'id="advisor-execution-{execution.id}"' in undo.content.decode()
        assert "rewritten whole at every step" in undo.content.decode()
        assert not Dismissal.objects.exists()

    def test_without_javascript_the_form_posts_and_comes_back_to_the_card(self) -> None:
        self.start("a_seed_long", SEED_INPUT)
        response = self.login("operator").post("/advisor/graphs/a_seed_long/dismiss/", {"key": KEY})
        assert response.status_code == 302 and response["Location"] == "/graphs/#advisor-graph-a_seed_long"
        assert Dismissal.objects.filter(key=KEY).count() == 1
        self.client.post("/advisor/graphs/a_seed_long/dismiss/", {"key": KEY})  # twice: still one row
        assert Dismissal.objects.filter(key=KEY).count() == 1

    def test_a_key_that_names_no_kind_of_finding_is_refused_and_changes_nothing(self) -> None:
        self.login("operator")
        response = self.dismiss(key="made_up:reports")
        assert response.status_code == 422 and not Dismissal.objects.exists()
        assert 'role="alert">Not a finding: expected &lt;kind&gt;:&lt;subject&gt;' in response.content.decode()
        assert self.client.post("/advisor/graphs/nope/dismiss/", {"key": KEY}).status_code == 404

    def test_what_a_dismissal_records_is_shown_as_text(self) -> None:
        self.start("a_seed_long", SEED_INPUT)
        self.login("operator")
        response = self.dismiss(title=HOSTILE)
        self.assertNoLiveMarkup(response.content.decode())


class ExecutionPageTests(AdvisorPageTestCase):
    def test_the_execution_page_shows_its_findings_linked_to_the_step_or_span(self) -> None:
        execution = self.start("a_long_prompt", {"question": "May I?"})
        html = self.login("reviewer").get(f"/executions/{execution.id}/").content.decode()
        assert "“brief_writer” sends a prompt of" in html and "Split the node" in html
        assert "#span-" in html and "Show the LLM call" in html

    def test_a_call_made_before_an_interrupt_links_to_the_span_shown_on_the_waiting_page(self) -> None:
        execution = self.start("a_notify_first", {"to": "owner@example.com"})
        tool = Span.objects.get(execution=execution, kind=Span.Kind.TOOL)
        html = self.login("operator").get(f"/executions/{execution.id}/").content.decode()
        assert "“notify_then_ask” calls “send_email” before it asks for approval" in html
        assert f'href="/executions/{execution.id}/#span-{tool.id}"' in html and f'id="span-{tool.id}"' in html

    def test_a_clean_execution_shows_no_advisor_panel(self) -> None:
        execution = self.start("a_tidy", {"task": "t", "reports": [], "iterations": 0})
        html = self.login("operator").get(f"/executions/{execution.id}/").content.decode()
        assert f'id="advisor-execution-{execution.id}"' not in html
