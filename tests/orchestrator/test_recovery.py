"""A dead worker is noticed in seconds: its execution's next step starts on another worker within 15 s.

Real worker and beat processes on the default lease and reconciler settings
(nothing shortened for the test): the whole worker is SIGKILLed mid-step, ten
times over; and a prefork pool child is killed, which Celery itself notices
(the task is redelivered at once, and the dead process's lease taken over).
Every time, no completed step runs twice and the result is what an undisturbed
run gives.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import registry, services
from orchestrator.models import Execution
from tests.orchestrator.test_runner import finished, runs
from tests.services import start_beat, wait_for
from traces.models import Step

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
Status = Execution.Status
INPUT = {"n": 0, "target": 5, "sleep": 1.0}
TAKEOVER_SECONDS = 15


def _undisturbed() -> dict[str, Any]:
    return registry.get_graph("t_counter").compile(InMemorySaver()).invoke(
        {**INPUT, "sleep": 0}, {"configurable": {"thread_id": "x"}})


def _holder_pid(execution_id: Any) -> int:
    owner = Execution.objects.filter(id=execution_id).values_list("lease_owner", flat=True).first() or ""
    return int(owner.split(":")[1]) if owner.count(":") >= 2 else 0


def _first_run_after(runlog_path: Path, execution_id: Any, lines_before: int, not_pid: int) -> int:
    """The pid of the first node run of the execution logged after ``lines_before`` by another process; 0 if none."""
    for line in runlog_path.read_text().splitlines()[lines_before:]:
        thread, _node, _step, pid, *_ = line.split(" ")
        if thread == str(execution_id) and int(pid) != not_pid:
            return int(pid)
    return 0


def _check_outcome(execution: Execution, runlog_path: Path, completed_before_kill: set[int]) -> None:
    wait_for(finished(execution.id), timeout=90, what="the rescued execution")
    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED, execution.error
    undisturbed = _undisturbed()
    assert (execution.state["n"], execution.state["log"]) == (undisturbed["n"], undisturbed["log"])
    counts = runs(runlog_path)
    for step in completed_before_kill:
        if step >= 1:
            assert counts[(str(execution.id), "work", str(step))] == 1, f"step {step} ran again"


def test_a_killed_workers_execution_goes_on_elsewhere_within_15_seconds_ten_times(worker, runlog) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    procs = {}
    for name in ("a", "b"):
        proc = worker(name, concurrency=2)
        procs[proc.popen.pid] = proc
    beat = start_beat()
    takeovers = []
    try:
        for round_ in range(10):
            execution = services.execution_start(graph_name="t_counter", input=INPUT, user=None)
            wait_for(lambda: Step.objects.filter(execution=execution).count() >= 2, timeout=60,
                     what=f"two completed steps (round {round_})")
            holder = _holder_pid(execution.id)
            assert holder in procs, (holder, list(procs))
            completed = set(Step.objects.filter(execution=execution).values_list("step", flat=True))
            lines_before = len(runlog.read_text().splitlines())
            killed_at = time.monotonic()
            procs.pop(holder).kill(signal.SIGKILL)  # the whole worker, mid-step
            rescuer = wait_for(lambda: _first_run_after(runlog, execution.id, lines_before, holder),
                               timeout=TAKEOVER_SECONDS + 30, interval=0.1, what="the next step on another worker")
            took = time.monotonic() - killed_at
            takeovers.append(round(took, 1))
            assert rescuer in procs, rescuer
            assert took <= TAKEOVER_SECONDS, f"round {round_}: the next step started {took:.1f} s after the kill"
            _check_outcome(execution, runlog, completed)
            replacement = worker(f"r{round_}", concurrency=2)
            procs[replacement.popen.pid] = replacement
    finally:
        beat.kill()
        print("takeover seconds:", takeovers)


def test_a_killed_prefork_child_is_noticed_by_celery_and_its_execution_taken_over_at_once(worker, runlog) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    parent = worker("pre", pool="prefork", concurrency=2)
    beat = start_beat()
    try:
        execution = services.execution_start(graph_name="t_counter", input=INPUT, user=None)
        wait_for(lambda: Step.objects.filter(execution=execution).count() >= 2, timeout=60, what="two steps")
        child = _holder_pid(execution.id)
        assert child and child != parent.popen.pid
        completed = set(Step.objects.filter(execution=execution).values_list("step", flat=True))
        lines_before = len(runlog.read_text().splitlines())
        killed_at = time.monotonic()
        import os

        os.kill(child, signal.SIGKILL)
        wait_for(lambda: _first_run_after(runlog, execution.id, lines_before, child), timeout=30, interval=0.1,
                 what="the next step in another pool process")
        took = time.monotonic() - killed_at
        # Well inside the lease (8 s): the redelivered task took the dead process's lease at once.
        assert took < 5, f"the next step started {took:.1f} s after the kill"
        _check_outcome(execution, runlog, completed)
    finally:
        beat.kill()
