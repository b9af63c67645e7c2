"""The State, fork, Lineage and compare pages on real checkpoints (graphs run in the test's thread)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from orchestrator import budgets, registry, services
from orchestrator.models import Execution
from tests.base import PageTransactionTestCase
from tests.factories import fixture_execution
from traces.models import Step


@pytest.fixture
def parent(inline) -> Execution:  # type: ignore[no-untyped-def]
    execution = inline(services.execution_start(graph_name="seed", input=registry.get_graph("seed").example_input,
                                                user=None))
    assert execution.status == Execution.Status.SUCCEEDED
    return execution


def middle(execution: Execution) -> Step:
    return Step.objects.get(execution=execution, step=2)


class TimeTravelPageTestCase(PageTransactionTestCase):
    """The pages of ``self.parent``, a seed execution run to its end in the test's thread
    (its checkpoints are written on their own connection: hence a transaction test case)."""

    @pytest.fixture(autouse=True)
    def _parent(self, parent: Execution) -> None:
        self.parent = parent


class StatePageTests(TimeTravelPageTestCase):
    def test_the_state_at_a_step_with_a_prefilled_fork_form(self) -> None:
        self.login("operator")
        step = middle(self.parent)
        response = self.client.get(reverse("traces:state", args=[self.parent.id]), {"checkpoint": step.checkpoint_id})
        html = response.content.decode()
        assert response.status_code == 200
        assert "State at step 2" in html
        assert "Research finding index: 0" in html
        assert f'action="{reverse("traces:fork", args=[self.parent.id])}"' in html
        assert f'value="{step.checkpoint_id}"' in html
        assert "&quot;reports&quot;: [\n    &quot;Research finding index: 0&quot;\n  ]" in html
        assert '<option value="researcher">researcher</option>' in html
        assert "Replay unchanged" in html

    def test_reviewers_read_the_state_without_the_fork_form(self) -> None:
        self.login("reviewer")
        response = self.client.get(reverse("traces:state", args=[self.parent.id]))
        assert response.status_code == 200
        assert "Forking and replaying need the operator or admin role." in response.content.decode()

    def test_an_unknown_checkpoint_is_not_found(self) -> None:
        self.login("operator")
        response = self.client.get(reverse("traces:state", args=[self.parent.id]), {"checkpoint": "1f0-nope"})
        assert response.status_code == 404


class ForkViewTests(TimeTravelPageTestCase):
    def post(self, client, parent, **data):  # type: ignore[no-untyped-def]
        return client.post(reverse("traces:fork", args=[parent.id]),
                           {"checkpoint": middle(parent).checkpoint_id, "ns": "", "as_node": "", **data})

    def test_reloading_the_fork_address_opens_the_state_page_not_a_405(self) -> None:
        self.login("operator")
        response = self.client.get(reverse("traces:fork", args=[self.parent.id]))
        assert response.status_code == 302
        assert response["Location"] == reverse("traces:state", args=[self.parent.id])
        assert not Execution.objects.filter(parent=self.parent).exists()

    def test_a_valid_edit_starts_a_fork_and_opens_it(self) -> None:
        self.login("operator")
        response = self.post(self.client, self.parent, state=json.dumps({"reports": ["edited"]}))
        fork = Execution.objects.get(parent=self.parent)
        assert response.status_code == 302
        assert response["Location"] == reverse("traces:execution", args=[fork.id])
        page = self.client.get(response["Location"]).content.decode()
        assert f"Forked from step 2 of {self.parent.short_id} as {fork.short_id}." in page
        assert "Fork of" in page and f'href="{reverse("traces:execution", args=[self.parent.id])}"' in page
        assert '<span class="node-chip">edit</span>' in page
        # Its page shows what it started from (the edit), not the parent's original input as its input.
        assert "<h2>Started from</h2>" in page and "An edit of" in page
        assert "edited" in page and "The parent's original input" in page

    def test_htmx_is_sent_to_the_fork_with_hx_redirect(self) -> None:
        self.login("admin")
        response = self.client.post(reverse("traces:fork", args=[self.parent.id]),
                                    {"checkpoint": middle(self.parent).checkpoint_id, "replay": "1"},
                                    HTTP_HX_REQUEST="true")
        fork = Execution.objects.get(parent=self.parent)
        assert response.status_code == 204
        assert response["HX-Redirect"] == reverse("traces:execution", args=[fork.id])

    def test_a_bad_edit_comes_back_with_the_reason_next_to_the_state(self) -> None:
        self.login("operator")
        for state, message in (
            ("{not json", "Not valid JSON"),
            ("[1, 2]", "The state must be a JSON object"),
            ('{"reprots": []}', "reprots: &#x27;reprots&#x27; is not a key of this graph&#x27;s state"),
            ('{"iterations": "two"}', "iterations: Expected integer, got string."),
        ):
            with self.subTest(state=state):
                response = self.post(self.client, self.parent, state=state)
                assert response.status_code == 422
                html = response.content.decode()
                assert message in html
                assert "{not json" in html or state.replace('"', "&quot;") in html  # the user's text is kept
                assert not Execution.objects.filter(parent=self.parent).exists()

    def test_a_graph_over_its_daily_limit_refuses_a_fork_with_the_reason_and_a_replay_with_a_message(self) -> None:
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=None,
                                 daily_token_limit=10_000)
        fixture_execution(graph_name="seed", tokens_used=10_000, status=Execution.Status.SUCCEEDED)
        self.login("operator")
        response = self.post(self.client, self.parent, state=json.dumps({"reports": ["edited"]}))
        assert response.status_code == 429
        assert "seed has used its daily token limit: 10,000 of 10,000 tokens today." in response.content.decode()
        response = self.client.post(reverse("traces:fork", args=[self.parent.id]),
                                    {"checkpoint": middle(self.parent).checkpoint_id, "replay": "1"}, follow=True)
        assert "seed has used its daily token limit" in response.content.decode()
        assert not Execution.objects.filter(parent=self.parent).exists()

    def test_outsiders_cannot_fork_what_they_cannot_see(self) -> None:
        self.login("outsider")
        assert self.post(self.client, self.parent, state="{}").status_code == 403


class LineagePageTests(TimeTravelPageTestCase):
    def test_lineage_tree_and_the_side_by_side_comparison(self) -> None:
        self.login("operator")
        self.client.post(reverse("traces:fork", args=[self.parent.id]),
                         {"checkpoint": middle(self.parent).checkpoint_id,
                          "state": json.dumps({"reports": ["edited"]})})
        fork = Execution.objects.get(parent=self.parent)
        html = self.client.get(reverse("traces:lineage", args=[fork.id])).content.decode()
        assert "2 executions" in html
        assert self.parent.short_id in html and fork.short_id in html
        assert html.count('class="badge badge-') >= 3  # header + both tree entries
        assert f'<option value="{self.parent.id}" selected>' in html

        compare = self.client.get(reverse("traces:compare", args=[fork.id]))
        page = compare.content.decode()
        assert compare.status_code == 200
        assert "Up to step 2 both share one history (4 checkpoints, identical)" in page
        assert "1 changed" in page
        assert "Row 1 side by side" in page
        assert page.count('class="json-view"') >= 2
        assert "reports[0]" in page

    def test_an_execution_without_a_parent_offers_a_picker_of_other_runs(self) -> None:
        self.login("operator")
        other = fixture_execution(graph_name=self.parent.graph_name, graph_version=self.parent.graph_version)
        page = self.client.get(reverse("traces:compare", args=[self.parent.id])).content.decode()
        assert "Compare with…" in page and "has no parent" in page
        assert f'<option value="{other.id}">' in page and f'value="{self.parent.id}"' not in page
        assert 'name="with"' in page and "form-error" not in page
