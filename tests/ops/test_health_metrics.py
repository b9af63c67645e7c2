"""Probes and metrics on the real services: Postgres, Redis and real worker processes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import Approval
from approvals.services import approval_decide
from orchestrator import services
from orchestrator.models import Execution
from tests.orchestrator.budget_graphs import FAKE_MODEL, INPUT_TOKENS, OUTPUT_TOKENS
from tests.factories import make_role_users
from traces.models import Span, Step
from tests.services import ROOT, PrivateRedis, free_port, wait_for

Status = Execution.Status


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, keyed by (name, labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)



@pytest.mark.django_db
class HealthTests:
    def test_healthz_answers_a_probe_that_names_the_pod_by_its_ip(self) -> None:
        response = Client().get("/healthz", HTTP_HOST="10.42.0.17:8000")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_readyz_checks_postgres_redis_and_migrations(self) -> None:
        response = Client().get("/readyz", HTTP_HOST="10.42.0.17")
        assert response.status_code == 200, response.content
        checks = response.json()["checks"]
        assert checks["database"] == {**checks["database"], "ok": True, "detail": "postgresql"}
        assert checks["redis"]["ok"] and checks["redis"]["detail"] == "pong"
        assert checks["migrations"]["ok"]

    def test_readyz_is_unavailable_when_redis_is_gone(self) -> None:
        redis = PrivateRedis()
        url = redis.url
        redis.stop()  # our own Redis, stopped: the shared one is never touched
        with override_settings(REDIS_URL=url):
            response = Client().get("/readyz", HTTP_HOST="10.42.0.17")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert not body["checks"]["redis"]["ok"] and "Connection" in body["checks"]["redis"]["detail"]
        assert body["checks"]["database"]["ok"]

    def test_readyz_is_unavailable_while_a_migration_is_not_applied(self) -> None:
        from django.db import connection
        from django.db.migrations.recorder import MigrationRecorder

        from ops import health

        recorder = MigrationRecorder(connection)
        last = recorder.migration_qs.filter(app="orchestrator").order_by("-id").first()
        assert last is not None
        health._migrations_applied = False
        last.delete()  # rolled back with the test's transaction
        try:
            response = Client().get("/readyz")
            assert response.status_code == 503
            assert f"orchestrator.{last.name}" in response.json()["checks"]["migrations"]["detail"]
        finally:
            health._migrations_applied = False

    def test_the_probes_refuse_writes(self) -> None:
        assert Client().post("/readyz").status_code == 405

    @override_settings(LOOPGATE_METRICS_TOKEN="s3cret")
    def test_metrics_ask_for_the_token_when_one_is_set(self) -> None:
        assert Client().get("/metrics").status_code == 401
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        ok = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
        assert ok.status_code == 200 and b"loopgate_executions" in ok.content


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
class MetricsAfterRealRunsTests:
    def test_metrics_show_executions_steps_tokens_and_approvals_after_real_runs(self, worker) -> None:  # type: ignore[no-untyped-def]
        users = make_role_users()
        port = free_port()
        # A webhook nobody listens at: each failed delivery is counted by the worker.
        worker("w1", LOOPGATE_WORKER_METRICS_PORT=str(port),
               LOOPGATE_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hook", LOOPGATE_WEBHOOK_SECRET="s")
        counter = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 3}, user=None)
        spender = services.execution_start(graph_name="t_budget_loop", input={}, user=None, token_budget=3000)
        waiting = services.execution_start(graph_name="t_plain", input={}, user=None)
        decided = services.execution_start(graph_name="t_plain", input={}, user=None)
        wait_for(lambda: Execution.objects.filter(id=counter.id, status=Status.SUCCEEDED).exists(), what="the counter")
        wait_for(lambda: Execution.objects.filter(id=spender.id, status=Status.BUDGET_EXCEEDED).exists(),
                 what="the spender stopped over budget")
        wait_for(lambda: Approval.objects.filter(execution_id__in=[waiting.id, decided.id]).count() == 2,
                 what="two approvals")
        approval = Approval.objects.get(execution=decided)
        approval_decide(approval_id=approval.id, user=users["reviewer"], decisions=[{"type": "approve"}])
        wait_for(lambda: Execution.objects.filter(id=decided.id, status=Status.SUCCEEDED).exists(), what="decided")

        response = Client().get("/metrics", HTTP_HOST="10.42.0.17")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        found = samples(response.content.decode())
        assert value(found, "loopgate_database_metrics_up") == 1
        assert value(found, "loopgate_executions", graph="t_counter", status="succeeded") == 1
        assert value(found, "loopgate_executions", graph="t_plain", status="interrupted") == 1
        assert value(found, "loopgate_executions", graph="t_plain", status="succeeded") == 1
        assert value(found, "loopgate_budget_stops_total", graph="t_budget_loop") == 1
        recorded = Step.objects.filter(execution=counter).count()
        assert recorded >= 3  # the input step and three runs of "work"
        assert value(found, "loopgate_steps_seconds_count", graph="t_counter") == recorded
        assert value(found, "loopgate_steps_seconds_sum", graph="t_counter") > 0
        assert value(found, "loopgate_approvals_pending", graph="t_plain") == 1
        assert value(found, "loopgate_approval_decision_seconds_count", graph="t_plain") == 1
        assert value(found, "loopgate_queue_wait_seconds_count") == 4
        assert value(found, "loopgate_queue_depth") == 0
        # Three calls fit in a budget of 3,000 tokens at 1,000 each; the fourth was refused before it was made.
        assert value(found, "loopgate_llm_calls_total", graph="t_budget_loop", model=FAKE_MODEL, status="settled") == 3
        assert value(found, "loopgate_llm_calls_total", graph="t_budget_loop", model=FAKE_MODEL, status="refused") == 1
        assert value(found, "loopgate_llm_tokens_total", graph="t_budget_loop", model=FAKE_MODEL,
                     direction="input") == 3 * INPUT_TOKENS
        assert value(found, "loopgate_llm_tokens_total", graph="t_budget_loop", model=FAKE_MODEL,
                     direction="output") == 3 * OUTPUT_TOKENS
        spans = Span.objects.filter(execution=spender, kind=Span.Kind.LLM).count()

        # The worker counted each step as it recorded it, and the failed webhooks, on its own port.
        def from_worker() -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                return samples(answer.read().decode())

        wait_for(lambda: value(from_worker(), "loopgate_notification_failures_total", channel="webhook") >= 2,
                 what="the two approvals' failed webhooks")
        from_worker = from_worker()
        assert value(from_worker, "loopgate_step_seconds_count", graph="t_counter") == recorded
        assert value(from_worker, "loopgate_llm_call_seconds_count", graph="t_budget_loop", model=FAKE_MODEL) == spans


class EventWiringTests:
    def test_the_cores_lease_and_hand_back_events_are_counted(self) -> None:
        import uuid

        from ops import metrics
        from orchestrator import events

        lost, handed = metrics.LEASE_LOSSES._value.get(), metrics.SHUTDOWN_HANDBACKS._value.get()
        events.lease_lost.send(sender=None, execution_id=uuid.uuid4(), worker="w")
        events.handed_back.send(sender=None, execution_id=uuid.uuid4(), worker="w")
        from prometheus_client import generate_latest

        found = samples(generate_latest(metrics.process_registry()).decode())
        assert value(found, "loopgate_lease_losses_total") == lost + 1
        assert value(found, "loopgate_shutdown_handbacks_total") == handed + 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
class WorkerProbeTests:
    def probe(self, path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ops.probe", "--file", str(path), "--max-age", "20"],
                              cwd=ROOT, capture_output=True, text=True, timeout=30)

    def test_the_worker_probe_passes_while_the_worker_runs_and_fails_once_it_stopped(self, worker) -> None:  # type: ignore[no-untyped-def]
        path = Path(tempfile.mkdtemp(prefix="loopgate-probe-")) / "heartbeat"
        assert self.probe(path).returncode == 1  # no worker yet
        proc = worker("probed", LOOPGATE_WORKER_HEARTBEAT_FILE=str(path), LOOPGATE_WORKER_HEARTBEAT_SECONDS="1")
        wait_for(path.exists, timeout=60, what="the heartbeat file")
        first = path.stat().st_mtime
        wait_for(lambda: path.stat().st_mtime > first, timeout=10, what="a second heartbeat")
        result = self.probe(path)
        assert result.returncode == 0, result.stderr
        proc.stop()  # SIGTERM: a warm shutdown removes the file
        failed = self.probe(path)
        assert failed.returncode == 1 and "no heartbeat file" in failed.stderr

    def test_a_stale_heartbeat_fails_the_probe(self) -> None:
        import os

        path = Path(tempfile.mkdtemp(prefix="loopgate-probe-")) / "heartbeat"
        path.touch()
        os.utime(path, (path.stat().st_atime - 120, path.stat().st_mtime - 120))
        result = self.probe(path)
        assert result.returncode == 1 and "old" in result.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
class PreforkMetricsTests:
    def test_a_prefork_worker_serves_the_sum_of_its_processes_metrics(self, worker) -> None:  # type: ignore[no-untyped-def]
        port = free_port()
        shared = tempfile.mkdtemp(prefix="loopgate-prom-")
        worker("prefork", pool="prefork", concurrency=2, LOOPGATE_WORKER_METRICS_PORT=str(port),
               PROMETHEUS_MULTIPROC_DIR=shared)
        ids = [services.execution_start(graph_name="t_counter", input={"n": 0, "target": 2, "sleep": 0.3},
                                        user=None).id for _ in range(6)]
        wait_for(lambda: Execution.objects.filter(id__in=ids, status=Status.SUCCEEDED).count() == 6, timeout=120,
                 what="six executions on two processes")
        recorded = Step.objects.filter(execution_id__in=ids).count()
        # Each child process wrote its own file; the worker's endpoint adds them up.
        assert len(list(Path(shared).glob("histogram_*.db"))) >= 2
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            found = samples(answer.read().decode())
        assert value(found, "loopgate_step_seconds_count", graph="t_counter") == recorded
