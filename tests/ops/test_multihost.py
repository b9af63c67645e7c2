"""Loopgate across machines: Postgres, Redis, the web process and two workers each on a host
of its own (network namespaces on this machine, tests/ops/netns.py). A batch of executions,
some waiting for approvals decided through the web host, runs while one worker host is cut
off the network mid-step and later healed: every execution finishes, the cut-off worker's
executions are taken over by the other worker, no completed step runs again, and the cut-off
worker writes nothing after its lease was taken (the checkpointer fences by lease token).

Everything runs on services this test starts; the shared Postgres and Redis are not touched.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.ops import netns
from tests.services import CELERY, ROOT, Proc, wait_for

pytestmark = [pytest.mark.slow]
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1] if Path("/usr/lib/postgresql").exists() else None
LEASE_SECONDS = 6
COUNTERS, PLAINS, TARGET = 12, 4, 8


@pytest.fixture(scope="module")
def cluster():  # type: ignore[no-untyped-def]
    try:
        netns.check_available()
    except netns.NamespacesUnavailable as exc:
        pytest.skip(f"cannot make network namespaces here, so no multi-host proof: {exc}")
    if PG_BIN is None:
        pytest.fail("PostgreSQL's binaries are not installed under /usr/lib/postgresql")
    procs: dict[str, Proc] = {}
    with netns.network(["db", "redis", "web", "w1", "w2"]) as net:
        try:
            yield _start(net, procs)
        finally:
            for name in ("w1", "w2", "beat", "web", "redis", "db"):
                if name in procs:
                    procs[name].kill(signal.SIGTERM)


class Cluster:
    def __init__(self, net: netns.Network, procs: dict[str, Proc], env: dict[str, str], runlog: Path) -> None:
        self.net, self.procs, self.env, self.runlog = net, procs, env, runlog
        self.db_url = f"postgresql://postgres@{net.ips['db']}:5432/loopgate"
        self.web = f"http://{net.ips['web']}:8000"
        self.tokens: dict[str, str] = {}

    def sql(self, query: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.db_url, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def api(self, method: str, path: str, role: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.web + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {self.tokens[role]}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read() or b"null")

    def manage(self, *args: str) -> str:
        result = subprocess.run(self.net.run_in("web", [sys.executable, "manage.py", *args]), cwd=ROOT,
                                env=self.env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    def pid(self, name: str) -> int:
        return self.procs[name].popen.pid  # `ip netns exec` execs the command: the same process


def _start(net: netns.Network, procs: dict[str, Proc]) -> Cluster:
    work = Path(tempfile.mkdtemp(prefix="loopgate-multihost-"))
    work.chmod(0o755)
    pgdata, sockets = work / "pg", work / "sock"
    pgdata.mkdir()
    sockets.mkdir()
    subprocess.run(["chown", "postgres", str(pgdata), str(sockets)], check=True)
    subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres",
                    "-A", "trust", "--no-sync"], check=True, capture_output=True)
    with open(pgdata / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {net.subnet}.0/24 trust\n")
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    procs["db"] = Proc("db", net.run_in("db", [
        "runuser", "-u", "postgres", "--", str(PG_BIN / "postgres"), "-D", str(pgdata), "-p", "5432",
        "-k", str(sockets), "-c", f"listen_addresses={net.ips['db']}", "-c", "fsync=off",
        "-c", "max_connections=300"]), base)
    procs["redis"] = Proc("redis", net.run_in("redis", [
        "redis-server", "--bind", net.ips["redis"], "--port", "6379", "--save", "", "--appendonly", "no",
        "--protected-mode", "no"]), base)

    def db_up() -> bool:
        try:
            psycopg.connect(f"postgresql://postgres@{net.ips['db']}:5432/postgres", connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    wait_for(db_up, timeout=60, what="Postgres on its host")
    with psycopg.connect(f"postgresql://postgres@{net.ips['db']}:5432/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE loopgate")
    runlog = work / "runlog"
    runlog.touch()
    env = {**base, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1",
           "DATABASE_URL": f"postgres://postgres@{net.ips['db']}:5432/loopgate",
           "REDIS_URL": f"redis://{net.ips['redis']}:6379/0",
           "LOOPGATE_QUEUE": f"multihost-{net.tag}", "LOOPGATE_CHANNEL_PREFIX": f"multihost-{net.tag}",
           "LOOPGATE_LEASE_SECONDS": str(LEASE_SECONDS), "LOOPGATE_RECONCILE_SECONDS": "1",
           "ALLOWED_HOSTS": net.ips["web"], "LOOPGATE_TEST_RUNLOG": str(runlog),
           "LOOPGATE_WORKER_HEARTBEAT_FILE": "", "LOOPGATE_WORKER_METRICS_PORT": "9100"}
    cluster = Cluster(net, procs, env, runlog)
    cluster.manage("migrate", "--noinput")
    cluster.manage("setup_demo")
    for role in ("operator", "reviewer"):
        cluster.tokens[role] = cluster.manage("create_api_token", role).strip()
    daphne = str(Path(sys.executable).parent / "daphne")
    procs["web"] = Proc("web", net.run_in("web", [daphne, "-b", net.ips["web"], "-p", "8000",
                                                  "orchestrator.asgi:application"]), env)
    procs["beat"] = Proc("beat", net.run_in("web", [CELERY, "-A", "orchestrator", "beat", "-s",
                                                    str(work / "beat-schedule"), "-l", "INFO"]), env)
    for name in ("w1", "w2"):
        procs[name] = Proc(name, net.run_in(name, [
            CELERY, "-A", "orchestrator", "worker", "-P", "threads", "-c", "3", "-n", f"{name}@%h",
            "-Q", env["LOOPGATE_QUEUE"], "--without-mingle", "--without-gossip", "-l", "INFO"]), env)

    def web_ready() -> bool:
        try:
            with urllib.request.urlopen(f"{cluster.web}/readyz", timeout=3) as answer:
                return answer.status == 200
        except OSError:
            return False

    wait_for(web_ready, timeout=60, what="the web host's /readyz")
    for name in ("w1", "w2"):
        wait_for(lambda n=name: "ready." in procs[n].output(), timeout=60, what=f"worker {name}")
    return cluster


def test_a_batch_survives_a_worker_host_cut_off_mid_step_and_healed(cluster: Cluster) -> None:  # noqa: PLR0915
    c = cluster
    w1, w2 = c.pid("w1"), c.pid("w2")
    plains = [c.api("POST", "/api/v1/executions/", "operator", {"graph": "t_plain", "input": {}})["id"]
              for _ in range(PLAINS)]

    def leased_by(pid: int) -> set[str]:
        rows = c.sql("SELECT id::text FROM orchestrator_execution WHERE status = 'running' AND lease_owner LIKE %s",
                     f"%:{pid}:%")
        return {r[0] for r in rows}

    def stepped(ids: set[str]) -> bool:
        return bool(c.sql("SELECT 1 FROM traces_step WHERE execution_id::text = ANY(%s) AND step >= 1", list(ids)))

    def pending_approvals() -> list[str]:
        return [row["id"] for row in c.api("GET", "/api/v1/approvals/?status=pending&graph=t_plain", "reviewer")["results"]]

    def decide(approval_ids: list[str]) -> None:
        for approval_id in approval_ids:
            c.api("POST", f"/api/v1/approvals/{approval_id}/decide/", "reviewer",
                  {"decisions": [{"type": "approve"}], "comment": "decided through the web host"})

    # Two approvals decided before the cut, through the web host.
    wait_for(lambda: len(pending_approvals()) >= 2, timeout=60, what="approvals to decide")
    decide(pending_approvals()[:2])
    counters = [c.api("POST", "/api/v1/executions/", "operator",
                      {"graph": "t_counter", "input": {"n": 0, "target": TARGET, "sleep": 1.0}})["id"]
                for _ in range(COUNTERS)]

    # Cut w1 off while it holds executions mid-run.
    wait_for(lambda: leased_by(w1) and stepped(leased_by(w1)), timeout=60, interval=0.05, what="w1 mid-run")
    c.net.cut("w1")
    held = leased_by(w1)
    assert held
    held_steps = {e: {r[0] for r in c.sql("SELECT step FROM traces_step WHERE execution_id::text = %s", e)}
                  for e in held}

    # The rest of the approvals are decided while w1 is away; the web and w2 carry on.
    wait_for(lambda: len(pending_approvals()) + 2 >= PLAINS, timeout=60, what="the other approvals")
    decide(pending_approvals())
    # w2 takes over what w1 held once its lease lapses (the reconciler, on beat, re-queues it).
    wait_for(lambda: not (held & leased_by(w1)) and all(
        c.sql("SELECT status <> 'running' OR lease_owner LIKE %s FROM orchestrator_execution WHERE id::text = %s",
              f"%:{w2}:%", e)[0][0] for e in held), timeout=60, interval=0.2, what="w2 to take over w1's executions")
    time.sleep(3)
    c.net.heal("w1")

    everything = counters + plains
    wait_for(lambda: not c.sql("SELECT 1 FROM orchestrator_execution WHERE id::text = ANY(%s) AND status NOT IN "
                               "('succeeded', 'failed', 'cancelled', 'budget_exceeded')", everything),
             timeout=240, interval=0.5, what="every execution to finish")
    time.sleep(2 * LEASE_SECONDS)  # w1's stale work, back on the network, has had its chance to write

    # 1. Every execution finished, with the state of an undisturbed run.
    rows = {r[0]: r[1:] for r in c.sql(
        "SELECT id::text, graph_name, status, state, error FROM orchestrator_execution WHERE id::text = ANY(%s)",
        everything)}
    for execution_id in counters:
        graph, status, state, error = rows[execution_id]
        assert status == "succeeded", (execution_id, error)
        assert state["n"] == TARGET and state["log"] == [f"work {i}" for i in range(1, TARGET + 1)]
    for execution_id in plains:
        assert rows[execution_id][1] == "succeeded", rows[execution_id]

    # 2. The work was spread over both worker hosts, and w1's executions finished on w2.
    lines = [line.split(" ") for line in c.runlog.read_text().splitlines()]
    pids_by_thread: dict[str, list[str]] = collections.defaultdict(list)
    for thread, _node, _step, pid, *_ in lines:
        pids_by_thread[thread].append(pid)
    assert {str(w1), str(w2)} <= {pid for pids in pids_by_thread.values() for pid in pids}
    for execution_id in held & set(counters):
        assert pids_by_thread[execution_id][-1] == str(w2), "finished on the other worker"

    # 3. No completed step ran again; only the step w1 had in flight at the cut ran a second time, on w2,
    #    and its first run's writes were refused.
    runs = collections.Counter((t, n, s) for t, n, s, *_ in lines if t in counters)
    repeated = {key: n for key, n in runs.items() if n > 1}
    for (thread, _node, step), n in repeated.items():
        assert n == 2 and thread in held, (thread, step)
        assert int(step) not in held_steps[thread], f"step {step} of {thread} was completed, then ran again"
    assert len(repeated) <= len(held)

    # 4. Fencing: one recorded step per checkpoint, and each thread's history is one line
    #    (a stale writer would have forked it: two checkpoints with one parent).
    assert not c.sql("SELECT execution_id, step FROM traces_step GROUP BY 1, 2 HAVING count(*) > 1")
    assert not c.sql("SELECT thread_id, parent_checkpoint_id FROM orchestrator_checkpoint WHERE checkpoint_ns = '' "
                     "GROUP BY 1, 2 HAVING count(*) > 1")
    # w1 came back and found each of its executions taken: it stopped them without writing.
    # (Healed, w1 finds out at its next step boundary or heartbeat: on a loaded machine, a while later.)
    def w1_saw_each_loss() -> bool:
        w1_log = Path(c.procs["w1"].log.name).read_text(errors="replace")
        return all(f"lease on {execution_id} lost; another worker carries on" in w1_log for execution_id in held)

    wait_for(w1_saw_each_loss, timeout=60, what="the healed worker to find each of its leases taken")

    # w1 counted each lease it lost, on its own metrics port.
    with urllib.request.urlopen(f"http://{c.net.ips['w1']}:9100/metrics", timeout=10) as answer:
        assert f"loopgate_lease_losses_total {float(len(held))}" in answer.read().decode()

    # 5. The web host's metrics saw it all.
    with urllib.request.urlopen(f"{c.web}/metrics", timeout=10) as answer:
        metrics = answer.read().decode()
    assert f'loopgate_executions{{graph="t_counter",status="succeeded"}} {COUNTERS}.0' in metrics
    assert f'loopgate_approval_decision_seconds_count{{graph="t_plain"}} {PLAINS}.0' in metrics
