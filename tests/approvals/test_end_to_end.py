"""Each payload format end to end on real services: Postgres, Redis and a Celery
worker process running the graphs, never eager mode. The test process plays the
reviewer through the same service the pages call."""

from __future__ import annotations

import collections
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from approvals import services
from approvals.tasks import expire_overdue
from approvals.models import Approval
from orchestrator.models import AuditEntry
from orchestrator import registry
from orchestrator import services as executions
from orchestrator.errors import AlreadyDecided
from orchestrator.models import Execution
from tests.approvals.graphs import EMAIL
from tests.factories import make_role_users, make_user
from tests.services import Proc, start_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
Status = Execution.Status
TIMEOUT = 60


@pytest.fixture(scope="module")
def runlog() -> Iterator[Path]:
    path = Path(tempfile.mkstemp(prefix="loopgate-approvals-runlog-")[1])
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, runlog: Path) -> Iterator[Proc]:  # type: ignore[no-untyped-def]
    """One worker process for the module: every test's rows are committed, so it sees them."""
    with django_db_blocker.unblock():
        proc = start_worker("approvals", concurrency=4, LOOPGATE_TEST_RUNLOG=str(runlog))
    yield proc
    proc.kill()


@pytest.fixture
def users(worker, request):  # type: ignore[no-untyped-def]
    yield make_role_users()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"--- worker ---\n{worker.output()}")


def runs(path: Path, execution: Execution) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for line in path.read_text().splitlines():
        thread, node, *_ = line.split(" ")
        if thread == str(execution.id):
            counts[node] += 1
    return counts


def start(graph: str, input: dict) -> Execution:  # noqa: A002
    return executions.execution_start(graph_name=graph, input=input, user=None)


def pending(execution: Execution, count: int = 1) -> list[Approval]:
    def check():  # type: ignore[no-untyped-def]
        found = list(Approval.objects.filter(execution=execution, status=Approval.Status.PENDING)
                     .order_by("created_at", "interrupt_id"))
        status = Execution.objects.get(id=execution.id).status
        if status in Execution.FINISHED:
            raise AssertionError(f"the execution ended ({status}) instead of waiting: "
                                 f"{Execution.objects.get(id=execution.id).error}")
        return found if len(found) == count and status == Status.INTERRUPTED else None

    return wait_for(check, timeout=TIMEOUT, what=f"{count} pending approval(s) of {execution.graph_name}")  # type: ignore[return-value]


def finished(execution: Execution) -> Execution:
    wait_for(lambda: Execution.objects.filter(id=execution.id, status__in=Execution.FINISHED).exists(),
             timeout=TIMEOUT, what=f"{execution.graph_name} to finish")
    execution.refresh_from_db()
    return execution


def tool_results(execution: Execution) -> list[str]:
    return [m["content"] for m in execution.state["messages"] if m.get("type") == "tool"]


class LangChainAgentTests:
    def test_an_edited_send_email_runs_the_tool_with_the_edited_arguments(self, users) -> None:  # type: ignore[no-untyped-def]
        execution = start("t_hitl_agent", {"messages": [{"role": "user", "content": "Mail Alice the Q3 numbers"}]})
        [approval] = pending(execution)
        assert approval.format == Approval.Format.HITL
        assert approval.actions[0]["name"] == "send_email"
        assert approval.actions[0]["args"] == EMAIL
        edited = {**EMAIL, "to": "bob@example.com", "subject": "Q3 report (final)"}
        services.approval_decide(approval_id=approval.id, user=users["reviewer"],
                                 decisions=[{"type": "edit", "args": edited}])
        execution = finished(execution)
        assert execution.status == Status.SUCCEEDED, execution.error
        [result] = tool_results(execution)
        assert "Tool response:\nsent to bob@example.com: Q3 report (final)" in result
        assert "alice@example.com" not in result.split("Tool response:")[1]
        assert execution.state["messages"][-1]["content"].startswith("Done: ")

    def test_a_per_call_tool_approval_takes_one_decision_checked_against_the_tools_schema(self, users) -> None:  # type: ignore[no-untyped-def]
        execution = start("t_hitl_per_call", {"messages": [{"role": "user", "content": "Mail Alice"}]})
        [approval] = pending(execution)
        assert approval.format == Approval.Format.TOOL_APPROVAL
        assert approval.actions[0]["args_schema"]["required"] == ["to", "subject", "body"]
        with pytest.raises(ValidationError) as caught:  # a body-less edit never reaches the graph
            services.approval_decide(approval_id=approval.id, user=users["reviewer"],
                                     decisions=[{"type": "edit", "args": {"to": "bob@example.com", "subject": "s"}}])
        assert caught.value.message_dict == {"0.args.body": ["This field is required."]}
        services.approval_decide(approval_id=approval.id, user=users["reviewer"],
                                 decisions=[{"type": "edit", "args": {**EMAIL, "to": "carol@example.com"}}])
        execution = finished(execution)
        assert execution.status == Status.SUCCEEDED, execution.error
        assert any("sent to carol@example.com: Q3 report" in r for r in tool_results(execution))


def test_an_agent_inbox_graph_gets_accept_then_response(users, runlog) -> None:  # type: ignore[no-untyped-def]
    execution = start("t_inbox", {"topic": "Durable agents"})
    [first] = pending(execution)
    assert (first.format, first.actions[0]["name"]) == (Approval.Format.AGENT_INBOX, "publish_post")
    services.approval_decide(approval_id=first.id, user=users["reviewer"], decisions=[{"type": "approve"}])
    [second] = pending(execution)
    assert second.actions[0]["name"] == "ask_reader"
    services.approval_decide(approval_id=second.id, user=users["admin"],
                             decisions=[{"type": "respond", "message": "Checkpoints, please."}])
    execution = finished(execution)
    assert execution.status == Status.SUCCEEDED, execution.error
    assert execution.state["responses"] == [{"type": "accept", "args": None},
                                            {"type": "response", "args": "Checkpoints, please."}]


def test_a_plain_interrupt_is_approved(users, runlog) -> None:  # type: ignore[no-untyped-def]
    execution = start("t_plain", {})
    [approval] = pending(execution)
    assert (approval.format, approval.actions[0]["description"]) == (Approval.Format.PLAIN, "ok?")
    services.approval_decide(approval_id=approval.id, user=users["reviewer"], decisions=[{"type": "approve"}])
    execution = finished(execution)
    assert execution.status == Status.SUCCEEDED, execution.error
    assert execution.state == {"answer": {"type": "approve", "by": "rita"}, "done": True}


def test_twenty_concurrent_decisions_record_one_and_resume_the_graph_once(users, runlog) -> None:  # type: ignore[no-untyped-def]
    reviewers = [users["reviewer"], users["admin"]] + [make_user(f"rev{i}", "reviewers") for i in range(18)]
    execution = start("t_plain", {})
    [approval] = pending(execution)
    barrier = threading.Barrier(len(reviewers))
    outcomes: dict[str, str] = {}

    def decide(user) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait(timeout=30)
            kind = "approve" if user.username != "rita" else "reject"
            services.approval_decide(approval_id=approval.id, user=user, decisions=[{"type": kind}])
            outcomes[user.username] = "won"
        except AlreadyDecided as exc:
            outcomes[user.username] = f"lost to {exc.approval.decided_by.username}: {exc.approval.status}"
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    assert len(outcomes) == 20 and len(winners) == 1, outcomes
    approval.refresh_from_db()
    assert approval.decided_by.username == winners[0]
    told = {outcome for name, outcome in outcomes.items() if name != winners[0]}
    assert told == {f"lost to {winners[0]}: {approval.status}"}
    assert AuditEntry.objects.filter(approval_id=approval.id, kind=AuditEntry.Kind.DECISION).count() == 1
    execution = finished(execution)
    assert execution.status == Status.SUCCEEDED, execution.error
    assert execution.state["answer"]["by"] == winners[0]
    # "ask" ran when it interrupted and once more on the single resume; "finish" once.
    assert runs(runlog, execution) == {"ask": 2, "finish": 1}


def test_parallel_interrupts_are_decided_one_by_one_and_the_graph_resumes_once_with_all_answers(
    users, runlog  # type: ignore[no-untyped-def]
) -> None:
    execution = start("t_branches", {})
    by_question = {a.actions[0]["description"]: a for a in pending(execution, count=2)}
    left, right = by_question["Go left?"], by_question["Go right?"]
    services.approval_decide(approval_id=left.id, user=users["reviewer"], decisions=[{"type": "approve"}])
    assert Execution.objects.get(id=execution.id).status == Status.INTERRUPTED  # still waiting for the other
    services.approval_decide(approval_id=right.id, user=users["admin"],
                             decisions=[{"type": "respond", "message": "only if it is sunny"}])
    execution = finished(execution)
    assert execution.status == Status.SUCCEEDED, execution.error
    assert dict(execution.state["answers"]) == {
        "left": {"type": "approve", "by": "rita"},
        "right": {"type": "respond", "message": "only if it is sunny", "by": "alice"},
    }
    assert runs(runlog, execution) == {"left": 2, "right": 2, "join": 1}


def test_the_finops_example_left_unanswered_past_its_deadline_escalates(users) -> None:  # type: ignore[no-untyped-def]
    execution = start("finops", {**registry.get_graph("finops").example_input, "approval_timeout_seconds": 1})
    [approval] = pending(execution)
    assert approval.deadline is not None and approval.actions[0]["name"] == "shutdown_cluster"
    assert approval.is_high_stakes  # the graph marks its shutdown: one key does not approve it
    # Once the deadline has passed, the periodic task runs on the worker, as beat would send it.
    wait_for(lambda: timezone.now() > approval.deadline, timeout=10, what="the deadline")
    expire_overdue.delay()
    execution = finished(execution)
    assert execution.status == Status.SUCCEEDED, execution.error
    assert execution.state["outcome"] == "escalated"
    assert execution.state["actions_taken"] == []
    assert execution.state["notifications"][0]["to"] == "dana.kim"  # the graph's own escalation
    approval.refresh_from_db()
    assert approval.status == Approval.Status.EXPIRED and approval.resume_value == {"type": "timeout"}
    # And the escalation group was emailed, by a task of its own (tests/approvals/test_expiry.py).
    wait_for(lambda: Approval.objects.filter(id=approval.id, escalated_at__isnull=False).exists(), timeout=30,
             what="the escalation email")
    assert AuditEntry.objects.get(approval_id=approval.id).kind == AuditEntry.Kind.EXPIRY


def test_rejecting_a_static_breakpoint_cancels_the_execution(users, runlog) -> None:  # type: ignore[no-untyped-def]
    execution = start("t_guarded", {"n": 0})
    [approval] = pending(execution)
    assert (approval.format, approval.actions[0]["allowed_decisions"]) == (Approval.Format.BREAKPOINT,
                                                                           ["approve", "reject"])
    services.approval_decide(approval_id=approval.id, user=users["reviewer"],
                             decisions=[{"type": "reject", "message": "not this one"}])
    execution = finished(execution)
    assert execution.status == Status.CANCELLED
    assert "rejected" in execution.error["reason"]
    assert "act" not in runs(runlog, execution)
