"""Where a run's time goes in the runner itself: pyinstrument over ``execution_advance`` in this process.

    .venv/bin/python bench/profile_runner.py [loop|seed] [--runs N] [--html out.html]

No Celery in between: the execution is created (its queued advance goes to a
queue nobody reads) and advanced here, with all recording on (steps, spans,
diffs, live announcements on the Redis channel layer), so the call tree shows
what the runner and the recorder add to the saver. Prints the call tree (wall
time, every thread), ms per super-step and statements per step.
"""

from __future__ import annotations

import argparse
import time

import _common
import graphs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("loop", "seed"), nargs="?", default="loop")
    parser.add_argument("--runs", type=int, default=1, help="executions advanced under the profiler")
    parser.add_argument("--html", help="write pyinstrument's HTML here too")
    parser.add_argument("--no-profile", action="store_true", help="time only")
    args = parser.parse_args()
    _common.setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    from orchestrator.models import Execution
    from orchestrator.runner import execution_advance
    from orchestrator.services import execution_start

    name = {"loop": "bench_loop", "seed": "seed"}[args.what]

    def one() -> Execution:
        execution = execution_start(graph_name=name, input=dict(graphs.START), user=None, recursion_limit=1000)
        execution_advance(execution_id=execution.id)
        return Execution.objects.get(id=execution.id)

    with _common.throwaway_database():
        _common.register_bench_graphs()
        one()  # warm: the registry, the graph, the connections
        with CaptureQueriesContext(connection) as queries:
            counted = one()
        print(f"statements in the runner's thread per super-step: {len(queries) / max(1, counted.step_count):.1f}")
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        began = time.perf_counter()
        steps = 0
        if not args.no_profile:
            profiler.start()
        for _ in range(args.runs):
            steps += one().step_count
        if not args.no_profile:
            profiler.stop()
        elapsed = (time.perf_counter() - began) * 1000
        print(f"{elapsed / max(1, steps):.2f} ms per super-step ({steps} steps, {args.runs} runs, "
              f"{'profiled' if not args.no_profile else 'not profiled'})")
        if not args.no_profile:
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            if args.html:
                with open(args.html, "w") as out:
                    out.write(profiler.output_html())


if __name__ == "__main__":
    main()
