"""The outcome first: the execution page opens on what the run produced, and the list has an outcome
column (issue 14: every FinOps run showed a green "succeeded" with the outcome hidden in the state)."""

from __future__ import annotations

from django.urls import reverse

from orchestrator.models import Execution
from tests.base import PageTestCase
from tests.escaping import HOSTILE
from tests.traces.builders import make_execution
from traces.outcome import Outcome, outcome_of

FINOPS_STATE = {"account": "acme-prod", "outcome": "shut_down",
                "summary": "Shut down dev-analytics (eu-west-1) with the owner's approval: about $2,350 a month saved.",
                "messages": [{"type": "ai", "content": "Asking the owner."}]}


def test_the_graphs_own_summary_and_outcome_come_first() -> None:
    assert outcome_of(FINOPS_STATE) == Outcome("shut down", FINOPS_STATE["summary"], "summary")


def test_else_a_report_or_answer_else_the_last_ai_message_else_the_last_report() -> None:
    assert outcome_of({"report": "# Engines\\n…", "messages": []}).source == "report"
    messages = [{"type": "human", "content": "q"}, {"type": "ai", "content": [{"type": "text", "text": "A."}]},
                {"type": "tool", "content": "r"}]
    assert outcome_of({"messages": messages}) == Outcome("", "A.", "last message")
    assert outcome_of({"reports": ["one", "two"]}) == Outcome("", "two", "reports")
    assert outcome_of({"n": 3}) is None and outcome_of(None) is None


class OutcomePageTests(PageTestCase):
    def test_a_finished_execution_opens_on_its_result_and_the_list_shows_it(self) -> None:
        execution = make_execution(graph_name="finops", state=FINOPS_STATE)
        self.login("reviewer")
        page = self.client.get(reverse("traces:execution", args=[execution.id])).content.decode()
        result = page.index('id="outcome-title"')
        assert result < page.index('id="timeline-title"')  # before the trace
        assert '<span class="pill outcome-label">shut down</span>' in page
        assert "about $2,350 a month saved" in page
        listing = self.client.get(reverse("traces:executions")).content.decode()
        assert "<th scope=\"col\">Outcome</th>" in listing and "shut down" in listing

    def test_a_running_execution_has_no_result_yet_and_hostile_text_stays_text(self) -> None:
        running = make_execution(status=Execution.Status.RUNNING, finished_at=None, state=FINOPS_STATE)
        self.login("reviewer")
        assert 'id="outcome-title"' not in self.client.get(reverse("traces:execution", args=[running.id])).content.decode()
        hostile = make_execution(state={"summary": HOSTILE, "outcome": "<b>x</b>"})
        html = self.client.get(reverse("traces:execution", args=[hostile.id])).content.decode()
        assert HOSTILE not in html and "<b>x</b>" not in html


    def test_a_socket_that_opens_after_the_run_ended_catches_up_with_its_result(self) -> None:
        # The page rendered while the run went on; the run ended before its socket opened: the catch-up
        # the page asks for on opening brings the result and the final state, not only the header.
        execution = make_execution(state=FINOPS_STATE)
        self.login("reviewer")
        url = reverse("traces:steps", args=[execution.id])
        catchup = self.client.get(f"{url}?catchup=1&after=0", headers={"HX-Request": "true"}).content.decode()
        assert 'id="outcome-title"' in catchup and "shut down" in catchup
        assert '<div id="final-state" hx-swap-oob="true">' in catchup
        assert 'id="graph-diagram" hx-swap-oob="true"' in catchup


class PathTakenTests(PageTestCase):
    def test_the_diagram_shows_the_nodes_that_ran_and_how_often(self) -> None:
        from tests.traces.builders import make_steps

        execution = make_execution(graph_name="seed")
        make_steps(execution, 5, node="researcher")  # researcher, supervisor, researcher, supervisor, researcher
        self.login("reviewer")
        page = self.client.get(reverse("traces:execution", args=[execution.id])).content.decode()
        assert "classDef lg_visited" in page
        assert "class researcher,supervisor lg_visited" in page
        assert 'data-node="researcher">researcher <span class="visits" title="steps it ran in">×3</span>' in page
        assert 'data-node="supervisor">supervisor <span class="visits" title="steps it ran in">×2</span>' in page
        # The edges it went along, counted (a loop twice round); the ones it never took stay plain.
        assert "researcher --&gt;|×2| supervisor;" in page
        assert "supervisor -.-&gt;|×2| researcher;" in page
        assert "linkStyle 1,3 stroke:" in page
        assert "__start__ --&gt; researcher;" in page  # no __start__ step recorded here: not taken
