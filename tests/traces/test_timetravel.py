"""Time travel on real Postgres: the state at any checkpoint, forks with edits, replays, lineage, comparisons.

The graphs run in the test's thread (the runner's own code, ``execution_advance``), so every
checkpoint, step and span is real; workers are exercised in test_spans_on_workers.py.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from approvals.models import Approval
from orchestrator import budgets, registry, services
from orchestrator.budgets import DailyTokenLimitReached
from orchestrator.errors import PermissionDenied
from orchestrator.models import Execution
from traces import selectors
from traces import services as trace_services
from traces import state as states
from traces.models import Step
from tests.factories import fixture_execution, fixture_status

pytestmark = pytest.mark.django_db(transaction=True)
Status = Execution.Status


def seed_run(inline, user=None) -> Execution:  # type: ignore[no-untyped-def]
    execution = services.execution_start(graph_name="seed", input=registry.get_graph("seed").example_input, user=user)
    execution = inline(execution)
    assert execution.status == Status.SUCCEEDED, execution.error
    return execution


def step_at(execution: Execution, number: int) -> Step:
    return Step.objects.get(execution=execution, step=number)


class StateAtTests:
    def test_the_state_at_a_middle_step_comes_from_the_checkpointer(self, inline) -> None:  # type: ignore[no-untyped-def]
        execution = seed_run(inline)
        middle = step_at(execution, 2)  # after the supervisor sent the researcher back
        at = states.state_at(execution=execution, checkpoint_id=middle.checkpoint_id)
        assert at.step == 2
        assert at.values["reports"] == ["Research finding index: 0"]
        assert at.values["iterations"] == 1
        assert at.next == ["researcher"]
        assert at.keys == ["task", "reports", "iterations", "is_complete"]
        assert at.recorded_step == middle

    def test_the_head_is_the_final_state(self, inline) -> None:  # type: ignore[no-untyped-def]
        execution = seed_run(inline)
        at = states.state_at(execution=execution)
        assert at.values == execution.state
        assert at.next == []

    def test_a_checkpoint_of_another_thread_is_refused(self, inline) -> None:  # type: ignore[no-untyped-def]
        first, second = seed_run(inline), seed_run(inline)
        foreign = step_at(second, 2).checkpoint_id
        with pytest.raises(ValidationError) as caught:
            states.state_at(execution=first, checkpoint_id=foreign)
        assert "checkpoint" in caught.value.message_dict


class DiagramTests:
    def test_the_waiting_node_inside_a_subgraph_is_highlighted(self, inline) -> None:  # type: ignore[no-untyped-def]
        execution = inline(services.execution_start(graph_name="t_nested", input={"x": 0}, user=None))
        now = states.execution_now(execution=execution)
        assert now.state == "waiting"
        assert now.nodes == ["child", "child:inner_ask"]
        mermaid = states.mermaid_with_highlight(registry.get_graph("t_nested").mermaid, now)
        assert "subgraph child" in mermaid  # drawn with its subgraph (xray)
        assert mermaid.rstrip().endswith("class child\\3ainner_ask lg_waiting")
        assert "classDef lg_waiting" in mermaid

    def test_the_path_of_a_real_run_marks_the_edges_taken_with_their_counts(self, inline) -> None:  # type: ignore[no-untyped-def]
        execution = seed_run(inline)
        path = selectors.path_taken(execution=execution)
        rounds = path.visits["supervisor"]
        assert path.transitions[("__start__", "researcher")] == 1
        assert path.transitions[("researcher", "supervisor")] == rounds
        assert path.transitions[("supervisor", "researcher")] == rounds - 1
        assert path.transitions[("supervisor", "__end__")] == 1
        mermaid = states.mermaid_with_highlight(registry.get_graph("seed").mermaid, states.execution_now(
            execution=execution), visited=list(path.visits), transitions=path.transitions)
        assert "\tlinkStyle 0,1,2,3 stroke:" in mermaid
        assert f"\tresearcher -->|×{rounds}| supervisor;" in mermaid
        assert "\tsupervisor -. &nbsp;end&nbsp; .-> __end__;" in mermaid  # once: no count

    def test_a_failed_node_is_marked_and_a_finished_run_has_no_current_node(self, inline) -> None:  # type: ignore[no-untyped-def]
        failed = inline(services.execution_start(graph_name="t_boom", input={"n": 0}, user=None))
        now = states.execution_now(execution=failed)
        assert (now.state, now.nodes) == ("failed", ["explode"])
        assert "class explode lg_failed" in states.mermaid_with_highlight(registry.get_graph("t_boom").mermaid, now)
        assert states.execution_now(execution=seed_run(inline)).nodes == []


class ForkTests:
    def test_a_fork_with_edited_reports_finishes_with_the_edit_and_knows_its_parent(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        parent = seed_run(inline)
        middle = step_at(parent, 2)
        edited = {**states.state_at(execution=parent, checkpoint_id=middle.checkpoint_id).values,
                  "reports": ["A finding the operator wrote"]}
        fork = trace_services.execution_fork(execution_id=parent.id, user=users["operator"],
                                             checkpoint_id=middle.checkpoint_id, values=edited)
        assert fork.status == Status.QUEUED
        assert fork.parent_id == parent.id
        assert fork.forked_from_checkpoint == middle.checkpoint_id
        assert fork.created_by == users["operator"]
        first = Step.objects.get(execution=fork)
        assert first.nodes == ["edit"]
        assert first.update == {"edit": {"reports": ["A finding the operator wrote"]}}
        assert first.diff == [{"op": "change", "path": "reports[0]", "before": "Research finding index: 0",
                               "after": "A finding the operator wrote"}]

        fork = inline(fork)
        assert fork.status == Status.SUCCEEDED, fork.error
        assert fork.state["reports"] == ["A finding the operator wrote", "Research finding index: 1"]
        assert fork.state["is_complete"] is True
        # The parent is untouched; the fork's timeline goes on after its edit.
        parent.refresh_from_db()
        assert parent.state["reports"] == ["Research finding index: 0", "Research finding index: 1"]
        assert [s.node for s in Step.objects.filter(execution=fork).order_by("id")] == [
            "edit", "researcher", "supervisor"]

    def test_a_replay_runs_again_from_the_checkpoint_to_the_same_end(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        parent = seed_run(inline)
        middle = step_at(parent, 2)
        replay = trace_services.execution_replay(execution_id=parent.id, user=users["admin"],
                                                 checkpoint_id=middle.checkpoint_id)
        assert Step.objects.get(execution=replay).nodes == ["replay"]
        head = states.state_at(execution=replay)
        assert head.values == states.state_at(execution=parent, checkpoint_id=middle.checkpoint_id).values
        assert head.next == ["researcher"]
        replay = inline(replay)
        assert replay.status == Status.SUCCEEDED
        assert replay.state == parent.state

    def test_an_unchanged_state_is_a_replay(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        parent = seed_run(inline)
        middle = step_at(parent, 2)
        same = states.state_at(execution=parent, checkpoint_id=middle.checkpoint_id).values
        fork = trace_services.execution_fork(execution_id=parent.id, user=users["operator"],
                                             checkpoint_id=middle.checkpoint_id, values=same)
        assert Step.objects.get(execution=fork).nodes == ["replay"]

    def test_only_changed_keys_are_written_so_a_reducer_does_not_double_its_list(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        execution = inline(services.execution_start(graph_name="t_counter", input={"n": 0, "target": 3}, user=None))
        assert execution.state["log"] == ["work 1", "work 2", "work 3"]
        at_two = Step.objects.filter(execution=execution, nodes=["work"]).order_by("step")[1]  # after "work 2"
        state = states.state_at(execution=execution, checkpoint_id=at_two.checkpoint_id).values
        assert state["log"] == ["work 1", "work 2"]

        # n edited, log (an operator.add list) sent back unchanged: it must not be added again.
        fork = inline(trace_services.execution_fork(execution_id=execution.id, user=users["operator"],
                                                    checkpoint_id=at_two.checkpoint_id, values={**state, "n": 1}))
        assert fork.state["log"] == ["work 1", "work 2", "work 2", "work 3"]
        assert fork.state["n"] == 3

        # Items appended to a reducer list are added once; an item changed in place overwrites the list.
        grown = states.state_at(execution=trace_services.execution_fork(
            execution_id=execution.id, user=None, checkpoint_id=at_two.checkpoint_id,
            values={"log": ["work 1", "work 2", "extra"]}))
        assert grown.values["log"] == ["work 1", "work 2", "extra"]
        rewritten = states.state_at(execution=trace_services.execution_fork(
            execution_id=execution.id, user=None, checkpoint_id=at_two.checkpoint_id, values={"log": ["only"]}))
        assert rewritten.values["log"] == ["only"]

    def test_a_message_edited_in_place_keeps_its_place(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        execution = inline(services.execution_start(
            graph_name="deep_research", input={"task": "Compare checkpointers", "max_iterations": 1}, user=None))
        assert execution.status == Status.SUCCEEDED, execution.error
        after_supervisor = Step.objects.filter(execution=execution, nodes=["supervisor"]).order_by("step").first()
        state = states.state_at(execution=execution, checkpoint_id=after_supervisor.checkpoint_id).values
        messages = [dict(m) for m in state["messages"]]
        messages[0]["content"] = "CONTINUE\nNext query: what a checkpointer costs"
        fork = trace_services.execution_fork(execution_id=execution.id, user=users["operator"],
                                             checkpoint_id=after_supervisor.checkpoint_id,
                                             values={**state, "messages": messages})
        head = states.state_at(execution=fork)
        assert len(head.values["messages"]) == len(state["messages"])
        assert head.values["messages"][0]["content"] == "CONTINUE\nNext query: what a checkpointer costs"
        assert head.values["messages"][0]["id"] == state["messages"][0]["id"]
        assert inline(fork).status == Status.SUCCEEDED

    def test_a_fork_at_an_interrupt_asks_again_with_the_edited_state(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        execution = inline(services.execution_start(graph_name="finops", input=registry.get_graph("finops").example_input,
                                                    user=None))
        assert execution.status == Status.INTERRUPTED, execution.error
        at = states.state_at(execution=execution)
        assert at.interrupts and at.next == ["await_approval"]
        request = dict(at.values["approval_request"])
        request["message"] = "Edited by the operator: shut it down tonight?"
        fork = inline(trace_services.execution_fork(
            execution_id=execution.id, user=users["operator"], checkpoint_id=at.checkpoint_id,
            values={"approval_request": request}, as_node="communicate"))
        assert fork.status == Status.INTERRUPTED, fork.error
        approval = Approval.objects.get(execution=fork, status=Approval.Status.PENDING)
        assert approval.payload["message"] == "Edited by the operator: shut it down tonight?"
        # The parent still waits on its own approval, unchanged.
        assert Approval.objects.get(execution=execution).payload.get("message") != request["message"]

    def test_a_fork_inside_a_subgraph_resumes_the_subgraph_with_the_edit(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        execution = inline(services.execution_start(graph_name="t_nested", input={"x": 0}, user=None))
        assert execution.status == Status.INTERRUPTED
        root = states.state_at(execution=execution)
        assert [s.task for s in root.subgraphs] == ["child"]
        sub = root.subgraphs[0]
        inner = states.state_at(execution=execution, checkpoint_id=sub.checkpoint_id, checkpoint_ns=sub.checkpoint_ns)
        assert inner.is_subgraph and inner.values == {"x": 11} and inner.nodes == ["inner_add", "inner_ask"]

        fork = trace_services.execution_fork(execution_id=execution.id, user=users["operator"],
                                             checkpoint_id=sub.checkpoint_id, checkpoint_ns=sub.checkpoint_ns,
                                             values={"x": 500})
        assert Step.objects.get(execution=fork).checkpoint_ns == sub.checkpoint_ns
        fork = inline(fork)
        assert fork.status == Status.INTERRUPTED
        # Asked once, with the edited value (not the parent's stale question first).
        approval = Approval.objects.get(execution=fork)
        assert approval.payload == {"question": "Is x right?", "x": 500}
        Approval.objects.filter(id=approval.id).update(status=Approval.Status.APPROVED, resume_value="yes")
        fixture_status(fork.id, Status.QUEUED)
        fork = inline(fork)
        assert fork.status == Status.SUCCEEDED, fork.error
        assert fork.state == {"x": 500, "answer": "yes (x was 500)"}


class ForkValidationTests:
    @pytest.fixture
    def parent(self, inline) -> Execution:  # type: ignore[no-untyped-def]
        return seed_run(inline)

    def fork(self, parent: Execution, user=None, **kwargs):  # type: ignore[no-untyped-def]
        checkpoint = step_at(parent, 2).checkpoint_id
        return trace_services.execution_fork(execution_id=parent.id, user=user, checkpoint_id=checkpoint, **kwargs)

    def test_a_key_the_state_does_not_have_is_named(self, parent) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError) as caught:
            self.fork(parent, values={"reprots": []})
        assert "reprots" in caught.value.message_dict
        assert "it has: task, reports, iterations, is_complete" in caught.value.message_dict["reprots"][0]

    def test_a_value_of_the_wrong_type_is_named(self, parent) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError) as caught:
            self.fork(parent, values={"reports": "not a list", "iterations": "two"})
        assert caught.value.message_dict == {"reports": ["Expected array, got string."],
                                             "iterations": ["Expected integer, got string."]}

    def test_an_unknown_node_is_refused(self, parent) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError) as caught:
            self.fork(parent, values={"reports": []}, as_node="planner")
        assert "as_node" in caught.value.message_dict

    def test_a_state_that_is_not_an_object_is_refused(self, parent) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError):
            self.fork(parent, values=["reports"])  # type: ignore[arg-type]

    def test_nothing_is_left_behind_by_a_refused_fork(self, parent) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError):
            self.fork(parent, values={"reports": 3})
        assert Execution.objects.count() == 1

    def test_a_reviewer_may_not_fork(self, parent, users) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(PermissionDenied):
            self.fork(parent, user=users["reviewer"], values={"reports": []})
        with pytest.raises(PermissionDenied):
            trace_services.execution_replay(execution_id=parent.id, user=users["reviewer"],
                                            checkpoint_id=step_at(parent, 2).checkpoint_id)


class ForkBudgetTests:
    def test_a_graph_over_its_daily_limit_refuses_forks_and_replays_as_it_refuses_starts(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        parent = seed_run(inline)
        checkpoint = step_at(parent, 2).checkpoint_id
        budgets.graph_budget_set(user=users["admin"], graph_name="seed", token_budget=None, daily_token_limit=10_000)
        fixture_execution(graph_name="seed", tokens_used=10_000, status=Status.SUCCEEDED)
        count = Execution.objects.count()

        with pytest.raises(DailyTokenLimitReached) as start:
            services.execution_start(graph_name="seed", input=registry.get_graph("seed").example_input,
                                     user=users["operator"])
        with pytest.raises(DailyTokenLimitReached) as fork:
            trace_services.execution_fork(execution_id=parent.id, user=users["operator"], checkpoint_id=checkpoint,
                                          values={"reports": ["X"]})
        with pytest.raises(DailyTokenLimitReached) as replay:
            trace_services.execution_replay(execution_id=parent.id, user=users["admin"], checkpoint_id=checkpoint)
        assert (fork.value.message, fork.value.code, fork.value.extra) == (
            start.value.message, start.value.code, start.value.extra)
        assert replay.value.message == start.value.message
        assert "seed has used its daily token limit: 10,000 of 10,000 tokens today." in start.value.message
        assert Execution.objects.count() == count  # nothing left behind, no copied thread either
        assert not Step.objects.exclude(execution_id=parent.id).exists()

    def test_a_fork_keeps_the_parents_budget_as_far_as_the_graphs_budget_rules_allow(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        parent = seed_run(inline)
        checkpoint = step_at(parent, 2).checkpoint_id
        budgets.graph_budget_set(user=users["admin"], graph_name="seed", token_budget=8_000, daily_token_limit=None)

        def fork_budget(user: str) -> int | None:
            return trace_services.execution_replay(execution_id=parent.id, user=users[user],
                                                   checkpoint_id=checkpoint).token_budget

        Execution.objects.filter(id=parent.id).update(token_budget=5_000)
        assert fork_budget("operator") == 5_000
        # An admin raised the parent's budget: only an admin's fork may keep it.
        Execution.objects.filter(id=parent.id).update(token_budget=1_000_000)
        assert fork_budget("operator") == 8_000
        assert fork_budget("admin") == 1_000_000


class LineageTests:
    def test_the_tree_holds_every_fork_of_every_fork_and_the_comparison_starts_at_the_edit(self, inline, users) -> None:  # type: ignore[no-untyped-def]
        root = seed_run(inline)
        middle = step_at(root, 2)
        fork = inline(trace_services.execution_fork(execution_id=root.id, user=users["operator"],
                                                    checkpoint_id=middle.checkpoint_id, values={"reports": ["X"]}))
        replay = trace_services.execution_replay(execution_id=root.id, user=users["operator"],
                                                 checkpoint_id=step_at(root, 1).checkpoint_id)
        grandchild = trace_services.execution_fork(
            execution_id=fork.id, user=users["operator"],
            checkpoint_id=Step.objects.filter(execution=fork).order_by("id").last().checkpoint_id,
            values={"is_complete": False})

        for member in (root, fork, replay, grandchild):
            tree = selectors.execution_lineage(execution=member)
            assert tree.execution.id == root.id
            assert [c.execution.id for c in tree.children] == [fork.id, replay.id]
            assert [c.execution.id for c in tree.children[0].children] == [grandchild.id]
            assert {e.id for e in selectors.lineage_members(tree)} == {root.id, fork.id, replay.id, grandchild.id}

        comparison = states.executions_compare(left=root, right=fork)
        assert [p.step for p in comparison.shared] == [-1, 0, 1, 2]
        first = comparison.rows[0]
        assert first.left.checkpoint_id == middle.checkpoint_id
        assert first.right.label == "edit"
        assert first.diff == [{"op": "change", "path": "reports[0]", "before": "Research finding index: 0",
                               "after": "X"}]
        later = comparison.rows[1]
        assert later.left.label == later.right.label == "researcher"
        assert later.diff[0]["path"] == "reports[0]"
