"""100 WebSocket clients watching one execution: from a step's commit to every client having its fragment.

Starts daphne (the production ASGI server) and a Celery worker on the bench's
database and Redis, opens ``--clients`` WebSockets on one execution's page
socket as a logged-in operator, then runs bench/graphs.py's ``paced`` graph
(52 steps, 0.1 s a node, as a model call would take). Each pushed step row
(``id="step-N"``) is timed against the step's ``created_at`` (set in the
transaction that records it). Prints, over steps, p50/p99 of the time until
the last client had the fragment, and p50/p99 over every (client, step).

    .venv/bin/python bench/live.py
    .venv/bin/python bench/live.py --clients 50
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import socket
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import _common

STEP_ID = re.compile(r'id="step-(\d+)"')
_HANDSHAKES = asyncio.Semaphore(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_cookie() -> str:
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from orchestrator import roles

    user = User.objects.create_user("bench-operator", password="bench")
    user.groups.add(Group.objects.get_or_create(name=roles.OPERATORS)[0])
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def watch(url: str, cookie: str, origin: str, got: dict[int, dict[int, float]], client_no: int,
                ready: asyncio.Event, connected: list[int], stop: asyncio.Event) -> None:
    import websockets

    async with _HANDSHAKES:  # a few at a time: on a loaded machine 100 at once outlast daphne's handshake timeout
        ws = await websockets.connect(url, additional_headers={"Cookie": f"sessionid={cookie}", "Origin": origin},
                                      max_size=None, open_timeout=60)
    async with ws:
        connected.append(client_no)
        ready.set()
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            now = time.time()
            for step_id in STEP_ID.findall(str(message)):
                got[int(step_id)].setdefault(client_no, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for late pushes after the run")
    args = parser.parse_args()

    _common.setup_django()
    from django.db import connections

    from orchestrator.models import Execution
    from orchestrator.services import execution_start
    from traces.models import Step

    with _common.throwaway_database():
        bench_graphs = _common.register_bench_graphs()
        print(f"{_common.machine()}; PostgreSQL {_common.postgres_version()}; {args.clients} clients")
        cookie = session_cookie()
        port = free_port()
        env = {**os.environ, **_common.worker_env(bench_graphs)}
        log = open(f"/tmp/bench-daphne-{os.getpid()}.log", "w")  # noqa: SIM115
        daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                   "--websocket_connect_timeout", "60", "orchestrator.asgi:application"], cwd=_common.ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            with _common.Worker(graphs=bench_graphs):
                deadline = time.monotonic() + 60
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                # Created queued but not sent to the worker until every client watches: its first
                # steps must not be missed.
                from unittest import mock

                from orchestrator import services

                with mock.patch.object(services, "_queue_advance", lambda _id: None):
                    execution = execution_start(graph_name="bench_paced", input=dict(_import_graphs().START),
                                                user=None, recursion_limit=1000)
                connections["default"].close()
                url = f"ws://127.0.0.1:{port}/ws/executions/{execution.id}/"
                got: dict[int, dict[int, float]] = defaultdict(dict)

                async def run() -> None:
                    ready, stop, connected = asyncio.Event(), asyncio.Event(), []
                    clients = [asyncio.create_task(watch(url, cookie, f"http://127.0.0.1:{port}", got, i, ready,
                                                         connected, stop)) for i in range(args.clients)]
                    while len(connected) < args.clients:
                        await asyncio.sleep(0.05)
                        for c in clients:
                            if c.done() and c.exception():
                                raise c.exception()  # type: ignore[misc]
                    await asyncio.to_thread(_queue, execution.id)
                    await asyncio.to_thread(_wait_done, execution.id)
                    # The backlog: until every client has every step, or --drain seconds pass.
                    steps = await asyncio.to_thread(_step_ids, execution.id)
                    deadline = time.monotonic() + args.drain
                    while time.monotonic() < deadline and any(len(got.get(s, {})) < args.clients for s in steps):
                        await asyncio.sleep(0.2)
                    stop.set()
                    await asyncio.gather(*clients)

                asyncio.run(run())
        finally:
            daphne.terminate()
            daphne.wait(timeout=20)
            log.close()

        created = {s.id: s.created_at for s in Step.objects.filter(execution_id=execution.id)}
        every: list[float] = []
        last_client: list[float] = []
        by_step: list[tuple[float, int]] = []
        missing = 0
        for number, (step_id, at) in enumerate(sorted(created.items(), key=lambda kv: kv[1]), start=1):
            times = got.get(step_id, {})
            missing += args.clients - len(times)
            if not times:
                continue
            lat = [(t - at.timestamp()) * 1000 for t in times.values()]
            every.extend(lat)
            last_client.append(max(lat))
            by_step.append((max(lat), number))
        print(f"\n{len(created)} steps pushed to {args.clients} clients; {missing} (client, step) pairs never arrived")
        if last_client:
            print(f"step commit → last client has it: p50 {_common.percentile(last_client, 50):.1f} ms, "
                  f"p99 {_common.percentile(last_client, 99):.1f} ms")
            print(f"step commit → a client has it (every pair): p50 {_common.percentile(every, 50):.1f} ms, "
                  f"p99 {_common.percentile(every, 99):.1f} ms")
            worst = ", ".join(f"step {n}: {ms:.0f} ms" for ms, n in sorted(by_step, reverse=True)[:5])
            print(f"slowest steps (n-th step of the run → last client): {worst}")
            print(f"\nlive p99 to {args.clients} clients: {_common.percentile(last_client, 99):.1f} ms (target ≤ 100)")


def _import_graphs() -> Any:
    import graphs

    return graphs


def _queue(execution_id: Any) -> None:
    from django.db import connections

    from orchestrator.tasks import advance

    advance.delay(str(execution_id))
    connections["default"].close()


def _step_ids(execution_id: Any) -> list[int]:
    from django.db import connections

    from traces.models import Step

    ids = list(Step.objects.filter(execution_id=execution_id).values_list("id", flat=True))
    connections["default"].close()
    return ids


def _wait_done(execution_id: Any) -> None:
    from django.db import connections

    from orchestrator.models import Execution

    while Execution.objects.filter(id=execution_id, status__in=("queued", "running")).exists():
        time.sleep(0.1)
    connections["default"].close()


if __name__ == "__main__":
    _ = datetime
    main()
