"""SIGTERM to a worker mid-run (a Kubernetes rollout) hands the execution over: real worker processes."""

from __future__ import annotations

import collections
import signal
import time

import pytest

from orchestrator import services
from orchestrator.models import Execution
from tests.services import start_worker, wait_for
from traces.models import Step

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
Status = Execution.Status




class GracefulShutdownTests:
    def test_a_worker_sent_sigterm_mid_step_hands_its_execution_to_the_next_worker_at_once(  # type: ignore[no-untyped-def]
        self, procs, runlog
    ) -> None:
        # A lease far longer than the test allows, and no beat: only a hand-back can move the execution.
        env = {"LOOPGATE_LEASE_SECONDS": "120", "LOOPGATE_RECONCILE_SECONDS": "600"}
        leaving = start_worker("leaving", concurrency=2, **env)
        procs.append(leaving)
        execution = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 8, "sleep": 1.0},
                                             user=None)
        wait_for(lambda: Step.objects.filter(execution=execution, step__gte=2).exists(), timeout=60,
                 what="two steps on the first worker")
        staying = start_worker("staying", concurrency=2, **env)
        procs.append(staying)
        time.sleep(0.3)  # mid-step: each step sleeps a second
        sent = time.monotonic()
        leaving.kill(signal.SIGTERM)  # waits for the process to exit
        exited = time.monotonic() - sent
        assert leaving.popen.returncode == 0, leaving.output()
        assert exited < 15, f"the worker took {exited:.1f} s to leave"
        assert "handed back" in leaving.output()

        wait_for(lambda: Execution.objects.filter(id=execution.id, status__in=Execution.FINISHED).exists(),
                 timeout=60, what="the execution on the other worker")
        resumed_within = time.monotonic() - sent
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED, execution.error
        assert execution.state["n"] == 8
        assert execution.state["log"] == [f"work {i}" for i in range(1, 9)]
        # Long before the two-minute lease would have lapsed.
        assert resumed_within < 30, resumed_within

        lines = [line.split(" ") for line in runlog.read_text().splitlines() if line.startswith(str(execution.id))]
        per_step = collections.Counter((node, step) for _thread, node, step, *_ in lines)
        assert all(n == 1 for n in per_step.values()), f"a step ran twice: {per_step}"
        assert len(per_step) == 8
        pids = [pid for *_, pid, _extra in lines]
        assert len(set(pids)) == 2, "both workers ran steps"
        assert pids[-1] == str(staying.popen.pid)
