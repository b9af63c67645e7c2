"""Time travel never skips a person (issue 10): every door of a fork past a gate, on real Postgres.

The doors: the REST fork, the state page's fork form, a replay from the checkpoint that waits, and
each with the graphs whose gates differ in kind: FinOps (``interrupt()`` in a node), LangChain's
``HumanInTheLoopMiddleware`` agent (its middleware node), and static breakpoints (before and after a
node). An operator's fork past a gate waits for a reviewer in the new execution and nothing acts; a
reviewer's approval of that hold (or an admin's fork made as their decision) settles the parent's
approval, so approving the original afterwards is refused (409) and the action runs once.

The graphs run in the test's thread (the runner's own ``execution_advance``), as in test_timetravel.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from approvals import services as approvals
from approvals.models import Approval
from orchestrator.models import AuditEntry
from orchestrator import registry, services
from orchestrator.errors import PermissionDenied
from orchestrator.models import Execution
from traces import services as trace_services
from tests.base import ApiTransactionTestCase
from tests.traces.graphs import TRACE_GRAPHS
from traces.models import Step

Status = Execution.Status



@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, settings: Any, runlog: Path) -> Callable[[Execution], Execution]:
    """Every test graph registered, executions advanced here until they stop."""
    graphs = {**json.loads(django_settings.LOOPGATE_GRAPHS)["graphs"], **json.loads(TRACE_GRAPHS)["graphs"]}
    settings.LOOPGATE_GRAPHS = json.dumps({"graphs": graphs})
    registry.reset()
    monkeypatch.setattr(services, "_queue_advance", lambda _id: None)
    from orchestrator.runner import execution_advance

    def advance(execution: Execution) -> Execution:
        execution.refresh_from_db()
        if execution.status == Status.QUEUED:
            execution_advance(execution_id=execution.id)
        execution.refresh_from_db()
        return execution

    yield advance
    registry.reset()


def start(run: Callable, graph: str, input: dict[str, Any], user: Any = None) -> Execution:
    execution = run(services.execution_start(graph_name=graph, input=input, user=user))
    assert execution.status == Status.INTERRUPTED, execution.error
    return execution


def head_checkpoint(execution: Execution) -> str:
    return Step.objects.filter(execution=execution).order_by("-id").values_list("checkpoint_id", flat=True).first()


def pending(execution: Execution) -> list[Approval]:
    return list(Approval.objects.filter(execution=execution, status=Approval.Status.PENDING))


def ran(runlog: Path, execution: Execution, node: str) -> int:
    lines = runlog.read_text().splitlines() if runlog.exists() else []
    return sum(1 for line in lines if line.split()[:2] == [execution.thread_id, node])


def decide(approval: Approval, user: Any, kind: str = "approve") -> Approval:
    return approvals.approval_decide(approval_id=approval.id, user=user,
                                     decisions=[{"type": kind} for _ in approval.actions])


APPROVED = {"decision": {"outcome": "approved", "by": "x"}}


class ForkGateTestCase(ApiTransactionTestCase):
    """``self.advance(execution)`` advances it in the test's thread; ``self.runlog`` counts the nodes that ran."""

    @pytest.fixture(autouse=True)
    def _graphs(self, run: Callable[[Execution], Execution], runlog: Path) -> None:
        self.advance, self.runlog = run, runlog


class FinOpsForkTests(ForkGateTestCase):
    def test_the_reported_journey_through_the_rest_fork_waits_for_a_reviewer(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"}, self.users["operator"])
        steps = self.api("operator").get(f"/api/v1/executions/{parent.id}/steps/").json()["results"]
        response = self.api("operator").post(
            f"/api/v1/executions/{parent.id}/fork/",
            {"checkpoint_id": steps[-1]["checkpoint_id"], "state": APPROVED, "as_node": "await_approval"},
            format="json",
        )
        assert response.status_code == 202, response.content
        fork = self.advance(Execution.objects.get(id=response.json()["id"]))
        assert fork.status == Status.INTERRUPTED
        assert "actions_taken" not in (fork.state or {}) or fork.state["actions_taken"] == []
        [hold] = pending(fork)
        assert hold.node == "await_approval"
        assert hold.actions[0]["args"] == APPROVED
        assert "await_approval" in hold.actions[0]["description"]
        assert len(pending(parent)) == 1, "the parent's approval is untouched until someone decides"

    def test_a_reviewer_approving_the_hold_lets_the_fork_act_once_and_settles_the_parent(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"}, self.users["operator"])
        [original] = pending(parent)
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["operator"], checkpoint_id=head_checkpoint(parent),
            values=APPROVED, as_node="await_approval"))
        [hold] = pending(fork)
        decide(hold, self.users["reviewer"])
        fork = self.advance(fork)
        assert fork.status == Status.SUCCEEDED, fork.error
        assert fork.state["outcome"] == "shut_down"
        assert len(fork.state["actions_taken"]) == 1
        original.refresh_from_db()
        parent.refresh_from_db()
        assert original.status == Approval.Status.FORKED
        assert original.decided_by == self.users["reviewer"]
        assert parent.status == Status.CANCELLED
        assert str(fork.id)[:8] in parent.error["reason"]
        assert AuditEntry.objects.filter(approval_id=original.id, kind=AuditEntry.Kind.DECISION, outcome="forked",
                                         actor=self.users["reviewer"]).exists()
        # Approving the original afterwards is refused: nothing acts twice.
        response = self.api("reviewer").post(f"/api/v1/approvals/{original.id}/decide/",
                                                    {"decisions": [{"type": "approve"}]}, format="json")
        assert response.status_code == 409
        assert "rita" in response.json()["message"]

    def test_a_rejected_hold_cancels_the_fork_and_leaves_the_parent_waiting(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"})
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["operator"], checkpoint_id=head_checkpoint(parent),
            values=APPROVED, as_node="await_approval"))
        decide(pending(fork)[0], self.users["reviewer"], "reject")
        fork = self.advance(fork)
        assert fork.status == Status.CANCELLED
        assert "actions_taken" not in fork.state or fork.state["actions_taken"] == []
        assert len(pending(parent)) == 1

    def test_an_admins_fork_made_as_their_decision_settles_the_original(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"}, self.users["operator"])
        [original] = pending(parent)
        steps = self.api("admin").get(f"/api/v1/executions/{parent.id}/steps/").json()["results"]
        response = self.api("admin").post(
            f"/api/v1/executions/{parent.id}/fork/",
            {"checkpoint_id": steps[-1]["checkpoint_id"], "state": APPROVED, "as_node": "await_approval",
             "decide": True}, format="json")
        assert response.status_code == 202, response.content
        fork = self.advance(Execution.objects.get(id=response.json()["id"]))
        assert fork.status == Status.SUCCEEDED, fork.error
        assert len(fork.state["actions_taken"]) == 1
        original.refresh_from_db()
        assert (original.status, original.decided_by) == (Approval.Status.FORKED, self.users["admin"])
        entry = AuditEntry.objects.get(approval_id=original.id, kind=AuditEntry.Kind.DECISION)
        assert entry.detail["fork"] == str(fork.id) and entry.detail["as_node"] == "await_approval"
        response = self.api("reviewer").post(f"/api/v1/approvals/{original.id}/decide/",
                                                    {"decisions": [{"type": "approve"}]}, format="json")
        assert response.status_code == 409

    def test_an_operator_may_not_make_a_fork_their_decision(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"})
        response = self.api("operator").post(
            f"/api/v1/executions/{parent.id}/fork/",
            {"checkpoint_id": head_checkpoint(parent), "state": APPROVED, "as_node": "await_approval",
             "decide": True}, format="json")
        assert response.status_code == 403
        assert Execution.objects.count() == 1
        assert len(pending(parent)) == 1

    @override_settings(LOOPGATE_FOUR_EYES_GRAPHS=["finops"])
    def test_four_eyes_keeps_the_parents_starter_from_deciding_by_fork(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"}, self.users["admin"])
        with pytest.raises(PermissionDenied):
            trace_services.execution_fork(execution_id=parent.id, user=self.users["admin"],
                                          checkpoint_id=head_checkpoint(parent), values=APPROVED,
                                          as_node="await_approval", decide=True)
        assert Execution.objects.count() == 1
        assert len(pending(parent)) == 1

    def test_the_state_pages_fork_form_holds_the_fork_too(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"})
        self.login("operator")
        page = self.client.get(f"/executions/{parent.id}/state/")
        assert "await_approval — asks a person" in page.content.decode()
        assert 'name="decide"' not in page.content.decode(), "operators cannot make a fork their decision"
        response = self.client.post(f"/executions/{parent.id}/fork/", {
            "checkpoint": head_checkpoint(parent), "ns": "", "state": json.dumps(APPROVED),
            "as_node": "await_approval"}, follow=True)
        assert response.status_code == 200
        fork = Execution.objects.exclude(id=parent.id).get()
        assert "waits for a reviewer" in response.content.decode()
        fork = self.advance(fork)
        assert fork.status == Status.INTERRUPTED
        assert "actions_taken" not in fork.state or fork.state["actions_taken"] == []

    def test_a_replay_from_the_waiting_checkpoint_asks_again(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"})
        fork = self.advance(trace_services.execution_replay(execution_id=parent.id, user=self.users["operator"],
                                                        checkpoint_id=head_checkpoint(parent)))
        assert fork.status == Status.INTERRUPTED
        [asked] = pending(fork)
        assert asked.node == "await_approval" and asked.format == Approval.Format.PLAIN
        assert "actions_taken" not in fork.state or fork.state["actions_taken"] == []

    def test_an_edit_as_the_node_before_the_gate_asks_again(self) -> None:
        parent = start(self.advance, "finops", {"account": "acme-prod"})
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["operator"], checkpoint_id=head_checkpoint(parent),
            values=APPROVED, as_node="communicate"))
        [asked] = pending(fork)
        assert asked.node == "await_approval" and asked.format == Approval.Format.PLAIN


class AgentForkTests(ForkGateTestCase):
    def test_a_hitl_agent_forked_as_its_middleware_node_waits_and_sends_nothing(self) -> None:
        parent = start(self.advance, "t_hitl_agent", {"messages": [{"role": "user", "content": "mail alice"}]})
        messages = [*parent.state["messages"], {"type": "human", "content": "go ahead"}]
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["operator"], checkpoint_id=head_checkpoint(parent),
            values={"messages": messages}, as_node="HumanInTheLoopMiddleware.after_model"))
        assert fork.status == Status.INTERRUPTED, fork.error
        assert pending(fork)[0].format == Approval.Format.BREAKPOINT
        assert not any(m.get("type") == "tool" for m in fork.state["messages"]), "the tool ran"


class BreakpointForkTests(ForkGateTestCase):
    def test_a_fork_written_as_the_last_guarded_node_ends_without_running_it(self) -> None:
        # Written as "act", the graph believes "act" ran; it is the last node, so nothing runs
        # past the gate and there is nothing to hold.
        parent = start(self.advance, "t_guarded", {"n": 0, "target": 1})
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["operator"], checkpoint_id=head_checkpoint(parent),
            values={"n": 5}, as_node="act"))
        assert fork.status == Status.SUCCEEDED
        assert ran(self.runlog, fork, "act") == 0
        assert not pending(fork)

    def test_a_fork_written_as_a_guarded_node_with_work_after_it_waits(self) -> None:
        parent = start(self.advance, "t_guarded_after", {"n": 0, "target": 1})
        # Held after "work"; an edit at the checkpoint before it, written as "work", would reach "act".
        first = Step.objects.filter(execution=parent).order_by("id").first()
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["operator"], checkpoint_id=first.checkpoint_id,
            values={"n": 3}, as_node="work"))
        assert fork.status == Status.INTERRUPTED
        assert pending(fork)[0].node == "work"
        assert ran(self.runlog, fork, "act") == 0

    def test_a_replay_at_a_breakpoint_before_a_node_waits_and_the_node_does_not_run(self) -> None:
        parent = start(self.advance, "t_guarded", {"n": 0, "target": 1})
        fork = self.advance(trace_services.execution_replay(execution_id=parent.id, user=self.users["operator"],
                                                        checkpoint_id=head_checkpoint(parent)))
        assert fork.status == Status.INTERRUPTED
        assert ran(self.runlog, fork, "act") == 0
        decide(pending(fork)[0], self.users["reviewer"])
        fork = self.advance(fork)
        assert fork.status == Status.SUCCEEDED
        assert ran(self.runlog, fork, "act") == 1
        parent.refresh_from_db()
        assert parent.status == Status.CANCELLED, "the parent's breakpoint was settled by the fork"

    def test_a_replay_at_a_breakpoint_after_a_node_waits_before_its_successor(self) -> None:
        parent = start(self.advance, "t_guarded_after", {"n": 0, "target": 1})
        assert ran(self.runlog, parent, "act") == 0
        fork = self.advance(trace_services.execution_replay(execution_id=parent.id, user=self.users["operator"],
                                                        checkpoint_id=head_checkpoint(parent)))
        assert fork.status == Status.INTERRUPTED
        assert ran(self.runlog, fork, "act") == 0

    def test_an_edit_at_a_breakpoint_after_a_node_waits(self) -> None:
        parent = start(self.advance, "t_guarded_after", {"n": 0, "target": 1})
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["operator"], checkpoint_id=head_checkpoint(parent),
            values={"n": 7}))
        assert fork.status == Status.INTERRUPTED
        assert ran(self.runlog, fork, "act") == 0


class UngatedForkTests(ForkGateTestCase):
    def test_the_seed_researcher_edit_runs_as_before_with_no_hold(self) -> None:
        parent = self.advance(services.execution_start(
            graph_name="seed", input=registry.get_graph("seed").example_input, user=None))
        assert parent.status == Status.SUCCEEDED
        step = Step.objects.get(execution=parent, step=2)
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["operator"], checkpoint_id=step.checkpoint_id,
            values={"reports": ["Edited finding"]}, as_node="researcher"))
        assert fork.status == Status.SUCCEEDED, fork.error
        assert fork.state["reports"][0] == "Edited finding"
        assert not Approval.objects.filter(execution=fork).exists()

    def test_an_admin_deciding_a_fork_that_crosses_no_gate_changes_nothing_else(self) -> None:
        parent = self.advance(services.execution_start(
            graph_name="seed", input=registry.get_graph("seed").example_input, user=None))
        step = Step.objects.get(execution=parent, step=2)
        fork = self.advance(trace_services.execution_fork(
            execution_id=parent.id, user=self.users["admin"], checkpoint_id=step.checkpoint_id,
            values={"reports": ["Edited finding"]}, as_node="researcher", decide=True))
        assert fork.status == Status.SUCCEEDED
        assert not AuditEntry.objects.filter(execution=fork).exists()
