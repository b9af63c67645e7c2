"""The runner on a real Celery worker against the saver alone and a Celery no-op, in one run.

- step through worker: the 402-step loop (bench/graphs.py) as an execution,
  advanced by ``celery worker -P threads -c 8`` with all recording on (steps,
  spans, diffs, live announcements), ms per super-step from ``started_at`` to
  ``finished_at``; against the same graph invoked here on DjangoCheckpointSaver
  alone (durability="sync"), ms per super-step;
- seed created→finished: the built-in seed graph, one execution at a time,
  from ``created_at`` to ``finished_at``;
- seed batch: 100 seed executions queued at once, executions/s and the median
  created→finished;
- Celery no-op: queue a task that does nothing but say so (bench/tasks.py), on
  the same broker and worker.

Rounds run each measurement once, order rotated; medians (min–max) over rounds.

    .venv/bin/python bench/runner.py            # DATABASE_URL / REDIS_URL: local Postgres and Redis
    .venv/bin/python bench/runner.py --rounds 3 --batch 100
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections import defaultdict
from typing import Any

import _common
import graphs

FINISHED = ("succeeded", "failed", "cancelled", "budget_exceeded", "interrupted")


def wait_finished(ids: list[Any], *, timeout: float = 300) -> list[Any]:
    """The executions once every one of them has ended (polled every 5 ms)."""
    from orchestrator.models import Execution

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(Execution.objects.filter(id__in=ids, status__in=FINISHED))
        if len(rows) == len(ids):
            return rows
        time.sleep(0.005)
    raise TimeoutError(f"{len(ids)} executions did not end within {timeout} s")


def start(graph_name: str, *, n: int = 1) -> list[Any]:
    from orchestrator.services import execution_start

    return [
        execution_start(graph_name=graph_name, input=dict(graphs.START), user=None, recursion_limit=1000).id
        for _ in range(n)
    ]


def through_worker(graph_name: str) -> float:
    """ms per super-step of one execution, as the worker ran it."""
    (row,) = wait_finished(start(graph_name))
    assert row.status == "succeeded", (row.status, row.error)
    return (row.finished_at - row.started_at).total_seconds() * 1000 / max(1, row.step_count)


def saver_alone(graph_name: str) -> float:
    """ms per super-step of the same graph invoked here on DjangoCheckpointSaver (no runner, no recording)."""
    from orchestrator.checkpointer import get_checkpointer

    reports, grow = (201, graph_name == "bench_grow")
    graph = graphs.seed_builder(reports=reports, grow=grow).compile(checkpointer=get_checkpointer())
    ms = _common.timed(
        lambda: graph.invoke(dict(graphs.START), {"configurable": {"thread_id": str(uuid.uuid4())}}, durability="sync")
    )
    return ms / (2 * reports)


def seed_one() -> float:
    """ms from created to finished of one seed execution."""
    (row,) = wait_finished(start("seed"))
    assert row.status == "succeeded", (row.status, row.error)
    return (row.finished_at - row.created_at).total_seconds() * 1000


def seed_batch(n: int) -> tuple[float, float]:
    """executions/s and median created→finished ms of ``n`` seed executions queued at once."""
    rows = wait_finished(start("seed", n=n), timeout=600)
    first = min(r.created_at for r in rows)
    last = max(r.finished_at for r in rows)
    per_s = n / (last - first).total_seconds()
    return per_s, statistics.median((r.finished_at - r.created_at).total_seconds() * 1000 for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=20, help="one-at-a-time seed executions per round")
    parser.add_argument("--noops", type=int, default=50, help="Celery no-op round trips per round")
    parser.add_argument("--batch", type=int, default=100, help="seed executions queued at once")
    args = parser.parse_args()

    _common.setup_django()
    with _common.throwaway_database():
        bench_graphs = _common.register_bench_graphs()
        print(f"{_common.machine()}; PostgreSQL {_common.postgres_version()}; {args.rounds} rounds; "
              "worker: -P threads -c 8")
        with _common.Worker(graphs=bench_graphs):
            figures: dict[str, list[float]] = defaultdict(list)
            tasks = {
                "loop through worker": lambda: figures["loop through worker"].append(through_worker("bench_loop")),
                "loop saver alone": lambda: figures["loop saver alone"].append(saver_alone("bench_loop")),
                "seed created-to-finished": lambda: figures["seed created-to-finished"].append(
                    statistics.median(seed_one() for _ in range(args.seeds))
                ),
                "celery no-op": lambda: figures["celery no-op"].append(
                    statistics.median(_common.noop_round_trip() for _ in range(args.noops))
                ),
                "seed batch": lambda: [
                    figures[k].append(v)
                    for k, v in zip(("batch executions/s", "batch created-to-finished"), seed_batch(args.batch))
                ],
            }
            # Warm up: the registry, the graphs, the worker's imports and connections.
            through_worker("bench_loop")
            saver_alone("bench_loop")
            seed_one()
            for round_no in range(args.rounds):
                for name in _common.rotated(list(tasks), round_no):
                    tasks[name]()
                print(f"round {round_no + 1} done", flush=True)

        print("\nmedian (min–max) over rounds")
        units = {"loop through worker": "ms/step", "loop saver alone": "ms/step", "seed created-to-finished": "ms",
                 "celery no-op": "ms", "batch executions/s": "/s", "batch created-to-finished": "ms"}
        for name, unit in units.items():
            print(f"  {name:28} {_common.spread(figures[name])} {unit}")
        med = {k: statistics.median(v) for k, v in figures.items()}
        print()
        print(f"ratio step through worker / saver alone: {med['loop through worker'] / med['loop saver alone']:.2f}")
        print(f"ratio seed created-to-finished / celery no-op: {med['seed created-to-finished'] / med['celery no-op']:.1f}")


if __name__ == "__main__":
    main()
