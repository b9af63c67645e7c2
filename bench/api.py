"""``runs.wait`` on a fresh thread through LangGraph's Python SDK: Loopgate's /langgraph/ API against Aegra.

The same client code (``langgraph_sdk.get_sync_client``) against two servers,
50 calls in a row each, interleaved in rounds: Loopgate (daphne and a Celery
worker started here, on the bench's own database, graph ``seed``) and Aegra
serving the same seed graph on the same Postgres (started by you from its own
virtualenv, see bench/README.md, and named with ``--aegra-url``). Each call:
create a thread, then time ``runs.wait(thread, "seed", input=…)``.

    .venv/bin/python bench/api.py --aegra-url http://127.0.0.1:8123
    .venv/bin/python bench/api.py            # Loopgate alone

Until Loopgate serves /langgraph/ it prints
"skipped: the LangGraph-compatible API is not built yet".
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import _common

SEED_INPUT = {"task": "Survey durable execution engines for agent graphs", "reports": [], "iterations": 0,
              "is_complete": False}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_calls(client: Any, n: int, assistant: str) -> list[float]:
    """ms of each of ``n`` runs.wait calls, each on a thread of its own."""
    times = []
    for _ in range(n):
        thread = client.threads.create()
        began = time.perf_counter()
        result = client.runs.wait(thread["thread_id"], assistant, input=SEED_INPUT)
        times.append((time.perf_counter() - began) * 1000)
        if not isinstance(result, dict) or not result.get("is_complete"):
            raise RuntimeError(f"runs.wait answered {result!r}")
    return times


def api_token() -> str:
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from orchestrator import roles

    user = User.objects.create_user("bench-api", password="bench")
    user.groups.add(Group.objects.get_or_create(name=roles.OPERATORS)[0])
    return Token.objects.create(user=user).key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--aegra-url", help="a running Aegra serving the seed graph as assistant 'seed'")
    parser.add_argument("--aegra-assistant", default="seed")
    args = parser.parse_args()

    _common.setup_django()
    from langgraph_sdk import get_sync_client

    with _common.throwaway_database():
        bench_graphs = _common.register_bench_graphs()
        port = free_port()
        env = {**os.environ, **_common.worker_env(bench_graphs)}
        log = open(f"/tmp/bench-api-daphne-{os.getpid()}.log", "w")  # noqa: SIM115
        daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                   "orchestrator.asgi:application"], cwd=_common.ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            with _common.Worker(graphs=bench_graphs):
                import httpx

                base = f"http://127.0.0.1:{port}/langgraph"
                deadline = time.monotonic() + 60
                while True:
                    try:
                        answer = httpx.post(f"{base}/assistants/search", json={}, timeout=5)  # 401 without a key; 404 if not built
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                if answer.status_code == 404:
                    print("skipped: the LangGraph-compatible API is not built yet")
                    return
                token = api_token()
                clients = {"loopgate": (get_sync_client(url=base, api_key=token,
                                                        headers={"Authorization": f"Token {token}"}), "seed")}
                if args.aegra_url:
                    clients["aegra"] = (get_sync_client(url=args.aegra_url), args.aegra_assistant)
                for name, (client, assistant) in clients.items():
                    wait_calls(client, 3, assistant)  # warm
                medians: dict[str, list[float]] = {name: [] for name in clients}
                for round_no in range(args.rounds):
                    for name in _common.rotated(list(clients), round_no):
                        client, assistant = clients[name]
                        medians[name].append(statistics.median(wait_calls(client, args.calls, assistant)))
                for name, values in medians.items():
                    print(f"  runs.wait {name:9} {_common.spread(values)} ms (median of {args.calls} per round)")
                if "aegra" in medians:
                    ratio = statistics.median(medians["loopgate"]) / statistics.median(medians["aegra"])
                    print(f"\nratio loopgate/aegra runs.wait: {ratio:.2f}")
                else:
                    print("\nratio loopgate/aegra runs.wait: n/a (no --aegra-url)")
        finally:
            daphne.terminate()
            daphne.wait(timeout=20)
            log.close()


if __name__ == "__main__":
    main()
