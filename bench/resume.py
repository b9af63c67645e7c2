"""From an approval's decision to the resumed execution's next checkpoint, against a Celery no-op.

100 executions of bench/graphs.py's ``review`` graph (ask: a plain interrupt,
then act) wait at their approval; they are decided one by one through
``approval_decide`` (what the inbox and the API call). For each, the time from
the decide call's return to the first checkpoint the resumed run writes
(``created_at`` of the thread's newest checkpoint row, polled every 2 ms). Celery
no-op round trips on the same broker and worker are measured between decisions.

    .venv/bin/python bench/resume.py            # local Postgres and Redis
    .venv/bin/python bench/resume.py --executions 200
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from typing import Any

import _common


def make_reviewer() -> Any:
    from django.contrib.auth.models import Group, User

    from orchestrator import roles

    user = User.objects.create_user("bench-reviewer", password="bench")
    user.groups.add(Group.objects.get_or_create(name=roles.REVIEWERS)[0])
    return user


def next_checkpoint_after(thread_id: str, after: datetime.datetime, *, timeout: float = 30) -> datetime.datetime:
    from orchestrator.models import Checkpoint

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = (
            Checkpoint.objects.filter(thread_id=thread_id, created_at__gt=after)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if found is not None:
            return found
        time.sleep(0.002)
    raise TimeoutError(f"no checkpoint on {thread_id} after the decision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=100)
    args = parser.parse_args()

    _common.setup_django()
    from django.utils import timezone

    from approvals.models import Approval
    from approvals.services import approval_decide
    from orchestrator.models import Execution
    from orchestrator.services import execution_start

    with _common.throwaway_database():
        bench_graphs = _common.register_bench_graphs()
        print(f"{_common.machine()}; PostgreSQL {_common.postgres_version()}; {args.executions} executions")
        reviewer = make_reviewer()
        with _common.Worker(graphs=bench_graphs):
            ids = [
                execution_start(graph_name="bench_review", input={"task": f"job {i}", "approved": None}, user=None).id
                for i in range(args.executions)
            ]
            deadline = time.monotonic() + 120
            while Approval.objects.filter(execution_id__in=ids, status="pending").count() < len(ids):
                if time.monotonic() > deadline:
                    raise TimeoutError("the executions did not all reach their approval")
                time.sleep(0.05)
            for _ in range(20):
                _common.noop_round_trip()  # warm

            resume_ms: list[float] = []
            noop_ms: list[float] = []
            approvals = list(Approval.objects.filter(execution_id__in=ids).select_related("execution"))
            for approval in approvals:
                noop_ms.append(_common.noop_round_trip())
                approval_decide(approval_id=approval.id, user=reviewer, decisions=[{"type": "approve"}])
                returned = timezone.now()
                found = next_checkpoint_after(approval.execution.thread_id, returned)
                resume_ms.append((found - returned).total_seconds() * 1000)
            # The runs finish on their own; wait, so the database is not dropped under them.
            while Execution.objects.filter(id__in=ids, status__in=("queued", "running")).exists():
                time.sleep(0.05)

        p50, p99 = statistics.median(resume_ms), _common.percentile(resume_ms, 99)
        noop = statistics.median(noop_ms)
        print(f"\ndecision returned → next checkpoint: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(resume_ms):.1f} ms")
        print(f"celery no-op round trip: p50 {noop:.1f} ms, p99 {_common.percentile(noop_ms, 99):.1f} ms")
        print()
        print(f"ratio resume / celery no-op: p50 {p50 / noop:.1f} p99 {p99 / noop:.1f}")


if __name__ == "__main__":
    main()
