"""The advisor's findings on real runs: each graph of tests/advisor/graphs.py run through the runner and
LangGraph in the test's thread, then read back from its trace."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from advisor import selectors
from approvals import services as approvals
from approvals.models import Approval
from orchestrator.models import Execution
from tests.advisor import graphs
from traces.models import Span, Step

Status = Execution.Status
SEED_INPUT = {"task": "Survey durable execution engines", "reports": [], "iterations": 0, "is_complete": False}

pytestmark = pytest.mark.django_db(transaction=True)


def kinds(execution: Execution) -> dict[str, Any]:
    return {f.key: f for f in selectors.execution_findings(execution=execution)}


class RewrittenStateTests:
    def test_the_seeds_plain_list_reports_is_flagged_after_a_long_run_with_its_growth(self, run: Callable) -> None:
        execution = run("a_seed_long", SEED_INPUT)
        assert execution.status == Status.SUCCEEDED
        found = kinds(execution)
        assert set(found) == {"whole_state:reports"}
        finding = found["whole_state:reports"]
        # Bytes per step at a few steps, growing with the history, each linked to its step.
        steps = [p.step for p in finding.growth]
        sizes = [p.bytes for p in finding.growth]
        assert len(steps) >= 3 and steps == sorted(steps) and sizes == sorted(sizes) and sizes[-1] > 4 * sizes[0]
        last = Step.objects.get(execution=execution, step=steps[-1])
        assert finding.growth[-1].href == f"/executions/{execution.id}/steps/{last.id}/"
        assert "8 times" in finding.evidence and "operator.add" in finding.fix

    def test_the_seed_itself_stops_too_soon_to_show_a_trend(self, run: Callable) -> None:
        execution = run("seed", SEED_INPUT)
        assert execution.status == Status.SUCCEEDED
        assert kinds(execution) == {}

    def test_a_graph_that_makes_none_of_the_mistakes_is_not_flagged(self, run: Callable) -> None:
        execution = run("a_tidy", {"task": "agent graphs", "reports": [], "iterations": 0})
        assert execution.status == Status.SUCCEEDED
        assert Step.objects.filter(execution=execution).count() > graphs.ROUNDS  # a long run, with LLM calls
        assert Span.objects.filter(execution=execution, kind=Span.Kind.LLM).count() == graphs.ROUNDS
        assert kinds(execution) == {}
        assert selectors.graph_advice(graph_name="a_tidy").findings == []


class LongPromptTests:
    def test_a_prompt_of_3000_tokens_is_flagged_with_a_link_to_the_call(self, run: Callable) -> None:
        execution = run("a_long_prompt", {"question": "May I shut down dev-cluster?"})
        found = kinds(execution)
        assert set(found) == {"long_prompt:brief_writer"}
        call = Span.objects.get(execution=execution, kind=Span.Kind.LLM)
        assert call.input_tokens > 2_900  # charged by the budget as the model reported it
        finding = found["long_prompt:brief_writer"]
        assert f"{call.input_tokens:,}-token prompt" in finding.evidence
        step = Step.objects.get(execution=execution, step=call.step)
        assert finding.href == f"/executions/{execution.id}/steps/{step.id}/#span-{call.id}"

    def test_a_call_the_provider_reported_no_tokens_for_is_counted_by_the_budgets_estimate(self) -> None:
        from advisor.rules import prompt_tokens

        span = {"input_tokens": 0, "input": [{"type": "system", "content": "x" * 7_000}]}
        assert prompt_tokens(span) == 4 + 7_000 // 3 + 1  # bytes / 3, rounded up, plus the message's overhead


class RunawayLoopTests:
    def test_a_loop_that_hit_the_recursion_limit_is_flagged(self, run: Callable) -> None:
        execution = run("a_endless", {}, recursion_limit=12)
        assert execution.status == Status.FAILED and execution.error["type"] == "GraphRecursionError"
        found = kinds(execution)
        assert set(found) == {"unguarded_loop:check→poll"}
        finding = found["unguarded_loop:check→poll"]
        assert "after 12 steps" in finding.evidence and "poll ×6" in finding.evidence
        assert "max_iterations" in finding.fix
        last = Step.objects.filter(execution=execution).order_by("-step").first()
        assert finding.href.endswith(f"/steps/{last.id}/")

    def test_a_loop_with_a_guard_that_ended_is_not_flagged(self, run: Callable) -> None:
        execution = run("seed", SEED_INPUT)  # researcher ⇄ supervisor, ended by its own condition
        assert not [k for k in kinds(execution) if k.startswith("unguarded_loop")]


class SideEffectBeforeInterruptTests:
    def test_a_tool_called_before_an_interrupt_is_flagged_and_the_repeat_counted_after_resume(
            self, run: Callable, users: dict) -> None:
        graphs.SENT.clear()
        execution = run("a_notify_first", {"to": "owner@example.com"})
        assert execution.status == Status.INTERRUPTED
        found = kinds(execution)
        assert set(found) == {"side_effect_before_interrupt:notify_then_ask"}
        assert "will be made again" in found["side_effect_before_interrupt:notify_then_ask"].evidence
        tool = Span.objects.get(execution=execution, kind=Span.Kind.TOOL)
        # Not yet a step of its own: the link finds the call on the execution's page.
        assert found["side_effect_before_interrupt:notify_then_ask"].href == (
            f"/executions/{execution.id}/#span-{tool.id}")

        approval = Approval.objects.get(execution=execution)
        approvals.approval_decide(approval_id=approval.id, user=users["reviewer"],
                                  decisions=[{"type": "approve"} for _ in approval.actions])
        execution = run.again(execution)
        assert execution.status == Status.SUCCEEDED
        assert len(graphs.SENT) == 2  # the email went out twice: what the finding warns of
        finding = kinds(execution)["side_effect_before_interrupt:notify_then_ask"]
        assert "ran 2 times for one decision" in finding.evidence


class ExampleGraphTests:
    def test_the_deep_research_example_is_told_its_supervisor_parses_free_text(self, run: Callable) -> None:
        from orchestrator.examples import deep_research

        execution = run("deep_research", deep_research.EXAMPLE_INPUT)
        assert execution.status == Status.SUCCEEDED
        # Its supervisor reads "Next query: ..." out of its own model's answer with a regex; the search node
        # before it is not blamed, since the supervisor calls a model of its own.
        found = kinds(execution)
        assert set(found) == {"free_text:supervisor→supervisor"}
        assert found["free_text:supervisor→supervisor"].source_line.startswith("match = re.search(")


class FreeTextTests:
    def test_a_node_that_parses_the_previous_llm_answer_with_json_and_regex_is_flagged(self, run: Callable) -> None:
        execution = run("a_free_text", {"goal": "ship the release"})
        found = kinds(execution)
        assert set(found) == {"free_text:planner→parse_plan"}
        finding = found["free_text:planner→parse_plan"]
        assert finding.source_line.startswith("match = re.search(")
        assert "with_structured_output" in finding.fix


class UnreportedTokensTests:
    def test_a_long_prompt_the_provider_reported_no_tokens_for_is_found_by_the_estimate(self, run: Callable) -> None:
        execution = run("a_long_prompt", {"question": "May I?"})
        Span.objects.filter(execution=execution, kind=Span.Kind.LLM).update(input_tokens=0)  # as a silent provider
        finding = kinds(execution)["long_prompt:brief_writer"]
        messages = Span.objects.get(execution=execution, kind=Span.Kind.LLM).input
        estimate = sum(4 + math.ceil(len(m["content"].encode()) / 3) for m in messages)  # the guard's rule
        assert estimate > 3_900  # ~12,000 bytes / 3: the estimate errs high
        assert finding.title == f"“brief_writer” sends a prompt of {estimate:,} tokens"
