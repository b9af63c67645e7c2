"""DjangoCheckpointSaver against LangGraph's PostgresSaver and InMemorySaver, side by side.

The seed graph (researcher ⇄ supervisor, orchestrator/examples/seed.py) three ways:
  loop   stretched to 200 iterations: 402 super-steps in one invoke
  seed   as it is: 4 super-steps, many invokes, each on a fresh thread
  grow   the loop, with a state that grows by a 2 KB string each step
each with every saver (same Postgres database, durability="sync"), through
``invoke`` and ``ainvoke``; then ``get_tuple`` (latest) and ``list`` (all) on the
404-checkpoint thread the loop leaves. Rounds run every variant once, in an order
rotated each round; figures are medians (min–max) over the rounds. An untimed
pass then counts statements, transactions and new connections per step.

    .venv/bin/pip install -r bench/requirements.txt     # the reference saver
    .venv/bin/python bench/checkpointer.py              # DATABASE_URL: a Postgres (default: local)
    .venv/bin/python bench/checkpointer.py --rounds 7 --only loop

It ends with its verdict lines, e.g. ``ratio django/postgres per step: 0.74``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import _common
import graphs

SAVERS = ("django", "postgres", "memory")
MODES = ("invoke", "ainvoke")
GRAPHS = {"loop": (201, False), "seed": (2, False), "grow": (201, True)}
SEED_INVOKES = 25  # invokes of the 4-step graph per measurement
READS = 200  # get_tuple calls per measurement
LISTS = 5  # whole-history lists per measurement


def seed_graph(saver: Any, *, reports: int, grow: bool) -> Any:
    return graphs.seed_builder(reports=reports, grow=grow).compile(checkpointer=saver)



class Savers:
    """One saver of each kind, sync and async, all on the bench's database."""

    def __init__(self, conninfo: str, loop: asyncio.AbstractEventLoop) -> None:
        import psycopg
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row

        from orchestrator.checkpointer import DjangoCheckpointSaver

        self.conninfo, self.loop = conninfo, loop
        # As PostgresSaver.from_conn_string opens it.
        self.pg_conn = psycopg.Connection.connect(conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        postgres = PostgresSaver(self.pg_conn)
        postgres.setup()

        async def aconnect() -> Any:
            conn = await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row
            )
            return conn, AsyncPostgresSaver(conn)  # it wants a running loop

        self.apg_conn, apostgres = loop.run_until_complete(aconnect())
        self.sync = {"django": DjangoCheckpointSaver(), "postgres": postgres, "memory": InMemorySaver()}
        self.asyn = {"django": self.sync["django"], "postgres": apostgres, "memory": self.sync["memory"]}

    def close(self) -> None:
        self.pg_conn.close()
        self.loop.run_until_complete(self.apg_conn.close())


def run_graph(savers: Savers, graph_name: str, saver: str, mode: str) -> tuple[float, int, str]:
    """One measurement: total ms, super-steps run, and the (last) thread id."""
    reports, grow = GRAPHS[graph_name]
    chosen = (savers.sync if mode == "invoke" else savers.asyn)[saver]
    graph = seed_graph(chosen, reports=reports, grow=grow)
    invokes = SEED_INVOKES if graph_name == "seed" else 1
    threads = [str(uuid.uuid4()) for _ in range(invokes)]

    def sync_run() -> None:
        for thread_id in threads:
            graph.invoke(graphs.START, {"configurable": {"thread_id": thread_id}}, durability="sync")

    async def async_run() -> None:
        for thread_id in threads:
            await graph.ainvoke(graphs.START, {"configurable": {"thread_id": thread_id}}, durability="sync")

    ms = _common.timed(sync_run if mode == "invoke" else lambda: savers.loop.run_until_complete(async_run()))
    steps = invokes * 2 * reports
    return ms, steps, threads[-1]


def reads(savers: Savers, saver: str, thread_id: str) -> tuple[float, float, int]:
    """ms per get_tuple (latest) and per list (whole thread), and how many checkpoints list yields."""
    chosen = savers.sync[saver]
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    get_ms = _common.timed(lambda: [chosen.get_tuple(config) for _ in range(READS)]) / READS
    found: list[int] = []
    list_ms = _common.timed(lambda: [found.append(len(list(chosen.list(config)))) for _ in range(LISTS)]) / LISTS
    return get_ms, list_ms, found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=sorted(GRAPHS), action="append", help="graphs to run (default: all)")
    parser.add_argument("--no-count", action="store_true", help="skip the counting pass")
    args = parser.parse_args()

    _common.setup_django()
    import _count

    graphs = args.only or list(GRAPHS)
    with _common.throwaway_database() as conninfo:
        print(f"{_common.machine()}; PostgreSQL {_common.postgres_version()}; {args.rounds} rounds")
        loop = asyncio.new_event_loop()
        savers = Savers(conninfo, loop)
        variants = [(g, s, m) for g in graphs for s in SAVERS for m in MODES]
        per_step: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        per_invoke: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        loop_threads: dict[str, str] = {}
        # A warm-up round, not counted: imports, prepared plans, the JIT of nothing.
        for variant in variants:
            run_graph(savers, *variant)
        for round_no in range(args.rounds):
            for variant in _common.rotated(variants, round_no):
                ms, steps, thread_id = run_graph(savers, *variant)
                per_step[variant].append(ms / steps)
                per_invoke[variant].append(ms / (SEED_INVOKES if variant[0] == "seed" else 1))
                if variant[0] == "loop" and variant[2] == "invoke":
                    loop_threads[variant[1]] = thread_id
            print(f"round {round_no + 1} done", flush=True)

        print("\nms per super-step, median (min–max) over rounds; per invoke for the seed graph")
        for graph_name in graphs:
            for mode in MODES:
                for saver in SAVERS:
                    v = (graph_name, saver, mode)
                    extra = f"   per invoke {_common.spread(per_invoke[v])}" if graph_name == "seed" else ""
                    print(f"  {graph_name:5} {mode:8} {saver:9} {_common.spread(per_step[v])}{extra}")

        read_results: dict[str, dict[str, list[float]]] = {s: defaultdict(list) for s in ("django", "postgres")}
        if "loop" in graphs:
            listed = {}
            for round_no in range(args.rounds):
                for saver in _common.rotated(["django", "postgres"], round_no):
                    get_ms, list_ms, listed[saver] = reads(savers, saver, loop_threads[saver])
                    read_results[saver]["get_tuple"].append(get_ms)
                    read_results[saver]["list"].append(list_ms)
            print(f"\nreads on the loop's thread ({listed['django']} checkpoints listed by django, "
                  f"{listed['postgres']} by postgres), ms per call")
            for op in ("get_tuple", "list"):
                for saver in ("django", "postgres"):
                    print(f"  {op:9} {saver:9} {_common.spread(read_results[saver][op])}")

        if not args.no_count:
            print("\ncounted in one untimed invoke (sync), per super-step; reads per call")
            for graph_name in graphs:
                for saver in ("django", "postgres"):
                    with _count.counting(conninfo) as counts:
                        _, steps, _ = run_graph(savers, graph_name, saver, "invoke")
                    invokes = SEED_INVOKES if graph_name == "seed" else 1
                    print(f"  {graph_name:5} {saver:9} {counts.per(steps)}  "
                          f"({counts.connections / invokes:.1f} new connections per invoke)")
            if "loop" in graphs:
                for saver in ("django", "postgres"):
                    chosen = savers.sync[saver]
                    config = {"configurable": {"thread_id": loop_threads[saver], "checkpoint_ns": ""}}
                    ops: dict[str, Callable[[], Any]] = {
                        "get_tuple": lambda: chosen.get_tuple(config),
                        "list": lambda: list(chosen.list(config)),
                    }
                    for op, fn in ops.items():
                        with _count.counting(conninfo) as counts:
                            fn()
                        print(f"  {op:9} {saver:9} {counts.statements} statements")

        savers.close()
        loop.close()

        def ratio(graph_name: str, mode: str = "invoke") -> float:
            return statistics.median(per_step[(graph_name, "django", mode)]) / statistics.median(
                per_step[(graph_name, "postgres", mode)]
            )

        print()
        if "loop" in graphs:
            print(f"ratio django/postgres per step: {ratio('loop'):.2f}")
        if "seed" in graphs:
            print(f"ratio django/postgres per step, seed graph (4 steps): {ratio('seed'):.2f}")
        if "grow" in graphs:
            print(f"ratio django/postgres per step, growing state: {ratio('grow'):.2f}")
        for graph_name in graphs:
            print(f"ratio django/postgres per step, {graph_name}, ainvoke: {ratio(graph_name, 'ainvoke'):.2f}")
        if "loop" in graphs:
            for op in ("get_tuple", "list"):
                r = statistics.median(read_results["django"][op]) / statistics.median(read_results["postgres"][op])
                print(f"ratio django/postgres {op}: {r:.2f}")


if __name__ == "__main__":
    main()
