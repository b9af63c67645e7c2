"""Where DjangoCheckpointSaver's time goes: pyinstrument over the 402-step loop, get_tuple and list.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/profile_checkpointer.py [loop|get_tuple|list] [--html out.html]

Prints pyinstrument's call tree (wall time, every thread), and for reads the
``EXPLAIN ANALYZE`` of the statement.
"""

from __future__ import annotations

import argparse
import uuid

import _common
import graphs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("loop", "get_tuple", "list"))
    parser.add_argument("--html", help="write pyinstrument's HTML here too")
    args = parser.parse_args()
    _common.setup_django()
    from pyinstrument import Profiler

    from orchestrator.checkpointer import DjangoCheckpointSaver

    with _common.throwaway_database():
        saver = DjangoCheckpointSaver()
        graph = graphs.seed_builder(reports=201).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
        graph.invoke(dict(graphs.START), dict(config), durability="sync")  # warm, and the thread to read
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        if args.what == "loop":
            config = {"configurable": {"thread_id": str(uuid.uuid4())}}
            with profiler:
                graph.invoke(dict(graphs.START), config, durability="sync")
        elif args.what == "get_tuple":
            with profiler:
                for _ in range(300):
                    saver.get_tuple(config)
        else:
            with profiler:
                for _ in range(3):
                    list(saver.list(config))
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if args.html:
            with open(args.html, "w") as f:
                f.write(profiler.output_html())
        if args.what != "loop":
            from django.db import connection

            from orchestrator.checkpointer import postgres

            sql = postgres._SELECT + " WHERE c.thread_id = %(t)s AND c.checkpoint_ns = %(ns)s ORDER BY c.checkpoint_id DESC"
            sql += " LIMIT 1" if args.what == "get_tuple" else " LIMIT 100"
            connection.ensure_connection()
            import psycopg

            with psycopg.Cursor(connection.connection) as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, {"t": config["configurable"]["thread_id"], "ns": ""})
                print("\n".join(r[0] for r in cur.fetchall()))


if __name__ == "__main__":
    main()
