"""The runner on real Postgres, Redis and Celery worker processes (never eager mode)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import redis
from langgraph.checkpoint.memory import InMemorySaver

from approvals.models import Approval
from approvals.services import approval_decide
from orchestrator import registry, services
from orchestrator.celery import app as celery_app
from orchestrator.models import Execution
from orchestrator.tasks import advance
from tests.factories import fixture_status, make_role_users
from tests.services import PrivateRedis, start_beat, wait_for
from traces.models import Span, Step

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
Status = Execution.Status



def runs(path: Path) -> collections.Counter:
    """(thread, node, step) → how many times that node ran at that step."""
    counts: collections.Counter = collections.Counter()
    for line in path.read_text().splitlines():
        thread, node, step, *_ = line.split(" ")
        counts[(thread, node, step)] += 1
    return counts


def finished(*ids):  # type: ignore[no-untyped-def]
    def check() -> bool:
        return not Execution.objects.filter(id__in=ids).exclude(status__in=Execution.FINISHED).exists()

    return check


def status_is(execution_id, *statuses):  # type: ignore[no-untyped-def]
    return lambda: Execution.objects.filter(id=execution_id, status__in=statuses).exists()



class RunnerOutcomeTests:
    def test_seed_loop_finishes_with_the_same_state_as_plain_langgraph(self, worker) -> None:  # type: ignore[no-untyped-def]
        from orchestrator.examples import seed

        entry = registry.get_graph("seed")
        expected = seed.app.invoke(dict(entry.example_input))
        worker()
        execution = services.execution_start(graph_name="seed", input=entry.example_input, user=None)
        wait_for(finished(execution.id), timeout=60, what="the seed execution")
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED, execution.error
        assert execution.state == expected
        # A step per checkpoint: the input, then researcher/supervisor in turn.
        nodes = [s.node for s in Step.objects.filter(execution=execution).order_by("step")]
        assert nodes[0] == "__start__"
        assert nodes[1:] == ["researcher", "supervisor"] * (len(nodes[1:]) // 2)
        assert execution.step_count == len(nodes) - 1  # the input's __start__ step is shown, not counted

    def test_a_graph_that_loops_forever_fails_at_its_step_limit(self, worker) -> None:  # type: ignore[no-untyped-def]
        worker()
        execution = services.execution_start(graph_name="t_forever", input={"n": 0}, user=None, recursion_limit=7)
        wait_for(finished(execution.id), timeout=60, what="the endless loop to stop")
        execution.refresh_from_db()
        assert execution.status == Status.FAILED
        assert "step limit" in execution.error["reason"]
        assert execution.error["type"] == "GraphRecursionError"
        # One rule for the count: the page's "Steps N / 7 limit per run" and the message agree.
        assert "took 7 steps in one run" in execution.error["reason"]
        assert execution.step_count == 7

    def test_a_node_that_raises_fails_the_execution_naming_the_node(self, worker) -> None:  # type: ignore[no-untyped-def]
        worker()
        execution = services.execution_start(graph_name="t_boom", input={"n": 0}, user=None)
        wait_for(finished(execution.id), timeout=60, what="the failing execution")
        execution.refresh_from_db()
        assert execution.status == Status.FAILED
        assert execution.error["type"] == "ValueError"
        assert execution.error["message"] == "the reactor overheated"
        assert execution.error["node"] == "explode"
        assert "Traceback" in execution.error["traceback"]
        assert Span.objects.filter(execution=execution, name="explode", status=Span.Status.ERROR).count() == 1

    def test_a_static_breakpoint_waits_for_approval_and_approve_continues(self, worker, runlog) -> None:  # type: ignore[no-untyped-def]
        worker()
        execution = services.execution_start(graph_name="t_guarded", input={"n": 0}, user=None)
        wait_for(status_is(execution.id, Status.INTERRUPTED), timeout=60, what="the breakpoint")
        approval = Approval.objects.get(execution=execution)
        assert approval.format == Approval.Format.BREAKPOINT
        assert approval.node == "act"
        assert not any(node == "act" for (_, node, _) in runs(runlog))
        # What the approvals app does on approve: mark it decided, queue the execution.
        Approval.objects.filter(id=approval.id).update(status=Approval.Status.APPROVED)
        fixture_status(execution.id, Status.QUEUED)
        advance.delay(str(execution.id))
        wait_for(finished(execution.id), timeout=60, what="the approved execution")
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED
        assert execution.state["log"] == ["work 1", "acted"]

    def test_a_static_breakpoint_approved_by_a_reviewer_through_the_approvals_service_continues(
        self, worker, runlog
    ) -> None:  # type: ignore[no-untyped-def]
        reviewer = make_role_users()["reviewer"]
        worker()
        execution = services.execution_start(graph_name="t_guarded", input={"n": 0}, user=None)
        wait_for(status_is(execution.id, Status.INTERRUPTED), timeout=60, what="the breakpoint")
        approval = Approval.objects.get(execution=execution)
        approval_decide(approval_id=approval.id, user=reviewer, decisions=[{"type": "approve"}])
        wait_for(finished(execution.id), timeout=60, what="the approved execution")
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED, execution.error
        assert execution.state["log"] == ["work 1", "acted"]
        assert [node for (_, node, _) in runs(runlog)].count("act") == 1
        approval.refresh_from_db()
        assert (approval.status, approval.decided_by) == (Approval.Status.APPROVED, reviewer)

    def test_a_static_breakpoint_rejected_by_a_reviewer_cancels_the_execution(self, worker, runlog) -> None:  # type: ignore[no-untyped-def]
        reviewer = make_role_users()["reviewer"]
        worker()
        execution = services.execution_start(graph_name="t_guarded", input={"n": 0}, user=None)
        wait_for(status_is(execution.id, Status.INTERRUPTED), timeout=60, what="the breakpoint")
        approval = Approval.objects.get(execution=execution)
        approval_decide(approval_id=approval.id, user=reviewer,
                        decisions=[{"type": "reject", "message": "Not on a Friday."}])
        wait_for(finished(execution.id), timeout=60, what="the rejected execution")
        execution.refresh_from_db()
        assert execution.status == Status.CANCELLED
        assert "rejected" in execution.error["reason"]
        assert execution.state["log"] == ["work 1"]
        assert not any(node == "act" for (_, node, _) in runs(runlog))

    def test_the_finops_example_stops_interrupted_with_one_pending_interrupt_naming_action_and_cluster(
        self, worker
    ) -> None:  # type: ignore[no-untyped-def]
        worker()
        execution = services.execution_start(
            graph_name="finops", input=registry.get_graph("finops").example_input, user=None
        )
        wait_for(status_is(execution.id, Status.INTERRUPTED, *Execution.FINISHED), timeout=60, what="the interrupt")
        execution.refresh_from_db()
        assert execution.status == Status.INTERRUPTED, execution.error
        graph = registry.get_graph("finops").compiled
        snapshot = graph.get_state({"configurable": {"thread_id": execution.thread_id}})
        assert len(snapshot.interrupts) == 1
        value = snapshot.interrupts[0].value
        assert value["action"] == "shutdown_cluster"
        assert value["cluster"] == "dev-analytics-2"
        approval = Approval.objects.get(execution=execution)
        assert approval.interrupt_id == snapshot.interrupts[0].id
        assert approval.actions[0]["name"] == "shutdown_cluster"
        assert approval.actions[0]["args"]["cluster"] == "dev-analytics-2"
        assert approval.deadline is not None

    def test_cancelling_a_running_execution_stops_it_at_the_next_step(self, worker) -> None:  # type: ignore[no-untyped-def]
        worker()
        execution = services.execution_start(
            graph_name="t_counter", input={"n": 0, "target": 50, "sleep": 0.3}, user=None
        )
        wait_for(lambda: Step.objects.filter(execution=execution).count() >= 3, timeout=60, what="three steps")
        services.execution_cancel(execution_id=execution.id, user=None)
        wait_for(finished(execution.id), timeout=60, what="the cancellation")
        execution.refresh_from_db()
        assert execution.status == Status.CANCELLED
        assert execution.state["n"] < 50


class RunnerTraceTests:
    def test_a_resumed_run_does_not_record_or_rerun_a_finished_parallel_task(self, worker, runlog) -> None:  # type: ignore[no-untyped-def]
        worker()
        execution = services.execution_start(graph_name="t_parallel", input={"n": 0}, user=None)
        wait_for(status_is(execution.id, Status.INTERRUPTED, *Execution.FINISHED), timeout=60, what="the interrupt")
        approval = Approval.objects.get(execution=execution)
        # What the approvals app does on a decision: the answer, then queue the execution.
        Approval.objects.filter(id=approval.id).update(status=Approval.Status.APPROVED, resume_value="yes")
        fixture_status(execution.id, Status.QUEUED)
        advance.delay(str(execution.id))
        wait_for(finished(execution.id), timeout=60, what="the resumed execution")
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED, execution.error
        assert sorted(execution.state["log"]) == sorted(["work 1", "asked: yes", "side"])
        # LangGraph replays side's cached write on resume: it neither ran nor was recorded again.
        thread = str(execution.id)
        counts = runs(runlog)
        assert sum(n for (t, node, _), n in counts.items() if t == thread and node == "side") == 1
        assert Span.objects.filter(execution=execution, kind=Span.Kind.NODE, name="side").count() == 1
        assert Span.objects.filter(execution=execution, kind=Span.Kind.NODE, name="ask").count() == 2  # asked, answered
        steps = list(Step.objects.filter(execution=execution).order_by("step"))
        assert [s.step for s in steps] == [0, 1, 2]
        assert steps[2].update == {"ask": {"log": ["asked: yes"]}, "side": {"log": ["side"]}}
        assert execution.step_count == 2  # the two node steps; the input's __start__ step is not counted

    def test_every_step_is_announced_on_the_channel_layer_as_it_happens(self, worker) -> None:  # type: ignore[no-untyped-def]
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        from traces.live import execution_group

        layer = get_channel_layer()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(services, "_queue_advance", lambda _id: None)  # queued below, once we listen
            execution = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 3}, user=None)
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(execution_group(execution.id), channel)
        worker()
        advance.delay(str(execution.id))
        received = []

        async def listen() -> None:
            import asyncio

            while True:
                message = await asyncio.wait_for(layer.receive(channel), timeout=60)
                received.append(message)
                if message["type"] == "trace.execution" and message["status"] in Execution.FINISHED:
                    return

        async_to_sync(listen)()
        # The start's own "queued" was announced before we listened; announcements leave from a
        # loop of their own (orchestrator/announce.py), so it may still reach us: it comes first.
        if received and received[0].get("status") == Status.QUEUED:
            received.pop(0)
        step_ids = [m["step_id"] for m in received if m["type"] == "trace.step"]
        assert step_ids == list(Step.objects.filter(execution=execution).order_by("step").values_list("id", flat=True))
        assert len(step_ids) == 4  # the input and three runs of work
        statuses = [m["status"] for m in received if m["type"] == "trace.execution"]
        assert statuses == ["running", "succeeded"]
        assert received[0]["type"] == "trace.execution"  # running is announced before the first step


class RunGraphFollowTests:
    def test_run_graph_seed_follow_prints_a_line_per_step_and_the_final_state_on_real_services(self, worker) -> None:  # type: ignore[no-untyped-def]
        import json
        import re
        import subprocess
        import sys

        from orchestrator.examples import seed
        from tests.services import ROOT, service_env

        worker()
        data = {"task": "durable agents", "reports": [], "iterations": 0, "is_complete": False}
        done = subprocess.run([sys.executable, "manage.py", "run_graph", "seed", "--input", json.dumps(data),
                               "--follow"], cwd=ROOT, env=service_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        step_lines = [line for line in done.stdout.splitlines() if re.match(r"^step\s+\d+\s", line)]
        expected = seed.app.invoke(dict(data))
        assert [line.split()[2] for line in step_lines] == (
            ["__start__"] + ["researcher", "supervisor"] * len(expected["reports"])
        )
        final = json.loads(done.stdout[done.stdout.index("final state:") + len("final state:"):])
        assert final == expected


class RunnerConcurrencyTests:
    def test_two_workers_run_fifty_executions_and_no_step_runs_twice(self, worker, runlog) -> None:  # type: ignore[no-untyped-def]
        worker("w1", concurrency=2)
        worker("w2", concurrency=2)
        ids = [
            services.execution_start(graph_name="t_counter", input={"n": 0, "target": 3}, user=None).id
            for _ in range(50)
        ]
        # A duplicate message for every execution: the lease must turn the copies away.
        for execution_id in ids:
            advance.delay(str(execution_id))
        wait_for(finished(*ids), timeout=240, interval=0.5, what="fifty executions")
        assert set(Execution.objects.filter(id__in=ids).values_list("status", flat=True)) == {Status.SUCCEEDED}
        counts = runs(runlog)
        for execution_id in ids:
            per_step = [n for (thread, node, _), n in counts.items() if thread == str(execution_id)]
            assert per_step == [1, 1, 1], (execution_id, per_step)
        # Both workers took a share (the queue was really spread over them).
        pids = {line.split(" ")[3] for line in runlog.read_text().splitlines()}
        assert len(pids) == 2, pids


class RunnerDurabilityTests:
    def test_a_worker_killed_mid_step_loses_nothing_and_repeats_no_completed_step(self, worker, runlog) -> None:  # type: ignore[no-untyped-def]
        env = {"LOOPGATE_LEASE_SECONDS": "5", "LOOPGATE_RECONCILE_SECONDS": "1"}
        doomed = worker("doomed", pool="solo", **env)
        beat = start_beat(**env)
        try:
            execution = services.execution_start(
                graph_name="t_counter", input={"n": 0, "target": 6, "sleep": 1.0}, user=None
            )
            wait_for(lambda: Step.objects.filter(execution=execution, step__gte=2).count() >= 2, timeout=60,
                     what="two completed steps")
            completed_before_kill = set(
                Step.objects.filter(execution=execution).values_list("step", flat=True)
            )
            doomed.kill()  # SIGKILL, mid-step
            worker("rescuer", pool="solo", **env)
            wait_for(finished(execution.id), timeout=120, what="the rescued execution")
        finally:
            beat.kill()
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED, execution.error
        undisturbed = registry.get_graph("t_counter").compile(InMemorySaver()).invoke(
            {"n": 0, "target": 6, "sleep": 0}, {"configurable": {"thread_id": "x"}}
        )
        assert execution.state["n"] == undisturbed["n"] == 6
        assert execution.state["log"] == undisturbed["log"]
        counts = runs(runlog)
        for step in completed_before_kill:
            if step >= 1:
                assert counts[(str(execution.id), "work", str(step))] == 1, f"step {step} ran again"
        assert sum(n for (t, _, _), n in counts.items() if t == str(execution.id)) <= 7  # 6 + the one killed

    def test_a_step_longer_than_the_lease_keeps_its_worker_thanks_to_the_heartbeat(self, worker, runlog) -> None:  # type: ignore[no-untyped-def]
        env = {"LOOPGATE_LEASE_SECONDS": "5", "LOOPGATE_RECONCILE_SECONDS": "1"}
        worker("slow", pool="solo", **env)
        worker("eager", pool="solo", **env)  # would take over the moment the lease lapsed
        beat = start_beat(**env)
        try:
            execution = services.execution_start(
                graph_name="t_counter", input={"n": 0, "target": 2, "sleep": 8.0}, user=None
            )
            wait_for(finished(execution.id), timeout=90, what="two eight-second steps")
        finally:
            beat.kill()
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED, execution.error
        counts = runs(runlog)
        # Each eight-second step ran once, though the lease is five seconds:
        # the heartbeat extended it, and the reconciler never handed it over.
        assert sorted(n for (t, _, _), n in counts.items() if t == str(execution.id)) == [1, 1]

    def test_executions_queued_on_a_flushed_broker_are_requeued_and_finish(self, worker) -> None:  # type: ignore[no-untyped-def]
        private = PrivateRedis()
        try:
            env = {"REDIS_URL": private.url, "LOOPGATE_RECONCILE_SECONDS": "1", "LOOPGATE_QUEUED_GRACE_SECONDS": "1"}
            ids = []
            with celery_app.connection_for_write(private.url) as conn:
                for _ in range(5):
                    with pytest.MonkeyPatch.context() as mp:
                        # Queue on the private broker only: the test's own app points at the shared one.
                        mp.setattr(services, "_queue_advance", lambda _id: None)
                        execution = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 2},
                                                             user=None)
                    advance.apply_async((str(execution.id),), connection=conn)
                    ids.append(execution.id)
            client = redis.Redis.from_url(private.url)
            assert client.dbsize() > 0
            client.flushall()
            assert client.dbsize() == 0
            worker("after-flush", **env)
            beat = start_beat(**env)
            try:
                wait_for(finished(*ids), timeout=90, what="the re-queued executions")
            finally:
                beat.kill()
            assert set(Execution.objects.filter(id__in=ids).values_list("status", flat=True)) == {Status.SUCCEEDED}
        finally:
            private.stop()


class CancelServiceTests:
    def test_cancelling_a_waiting_execution_cancels_its_pending_approvals(self, worker) -> None:  # type: ignore[no-untyped-def]
        worker()
        execution = services.execution_start(graph_name="t_guarded", input={"n": 0}, user=None)
        wait_for(status_is(execution.id, Status.INTERRUPTED), timeout=60, what="the breakpoint")
        services.execution_cancel(execution_id=execution.id, user=None)
        execution.refresh_from_db()
        assert execution.status == Status.CANCELLED
        assert list(Approval.objects.filter(execution=execution).values_list("status", flat=True)) == ["cancelled"]


class HandOffRaceTests:
    def test_a_decision_made_while_a_rerun_hands_over_again_still_resumes_the_execution(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        from orchestrator import runner

        monkeypatch.setattr(services, "_queue_advance", lambda _id: None)
        execution = services.execution_start(graph_name="t_guarded", input={"n": 0}, user=None)
        runner.execution_advance(execution_id=execution.id)  # the real runner, in this process
        execution.refresh_from_db()
        assert execution.status == Status.INTERRUPTED
        # A duplicate message re-runs it while its breakpoint is still pending...
        fixture_status(execution.id, Status.QUEUED)
        hand_off = runner._hand_off

        def decided_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
            # ...and a reviewer approves while that run is `running`: the decision cannot queue it.
            Approval.objects.filter(execution=execution).update(status=Approval.Status.APPROVED)
            return hand_off(*args, **kwargs)

        monkeypatch.setattr(runner, "_hand_off", decided_meanwhile)
        runner.execution_advance(execution_id=execution.id)
        execution.refresh_from_db()
        assert execution.status == Status.QUEUED  # not stuck waiting for a decision already made
        monkeypatch.setattr(runner, "_hand_off", hand_off)
        runner.execution_advance(execution_id=execution.id)
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED
        assert execution.state["log"] == ["work 1", "acted"]
