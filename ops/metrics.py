"""Prometheus metrics, with the well-kept ``prometheus_client``.

Two kinds, because Loopgate runs as many processes on many machines:

- **Cluster figures, read from the database at scrape time** (:class:`DatabaseCollector`,
  served by the web process's ``/metrics``): executions by graph and status, queue
  depth and wait, steps and their time, approvals pending and time to decision,
  tokens and cost by graph and model, budget stops, what retention removed. The
  database is the source of truth, so any one web replica reports the whole
  cluster and nothing is double-counted across replicas. (Aggregate across web
  replicas with ``max``, not ``sum``.)
- **Events counted where they happen** (module-level counters and histograms):
  step latency buckets as each step is recorded (in the worker), reconciler
  re-queues, lease losses, shutdown hand-backs, failed webhook and email tries, retention runs. Workers serve them on
  ``LOOPGATE_WORKER_METRICS_PORT``; with ``PROMETHEUS_MULTIPROC_DIR`` set (a
  prefork pool) they are aggregated over the worker's processes.

The names are documented in the README ("Metrics") and charted by
``deploy/grafana/loopgate.json``.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

# -- events -------------------------------------------------------------------------------------------------
STEP_SECONDS = Histogram(
    "loopgate_step_seconds", "Time of one super-step of a graph, as recorded by the worker that ran it.",
    ["graph"], buckets=STEP_BUCKETS,
)
LLM_CALL_SECONDS = Histogram(
    "loopgate_llm_call_seconds", "Latency of one LLM call (its span), as recorded by the worker.",
    ["graph", "model"], buckets=STEP_BUCKETS,
)
RECONCILER_REQUEUES = Counter(
    "loopgate_reconciler_requeues", "Executions the reconciler re-queued (lost message or expired lease).",
)
LEASE_LOSSES = Counter(
    "loopgate_lease_losses", "Runs that found their lease taken (heartbeat failed or another worker claimed it).",
)
SHUTDOWN_HANDBACKS = Counter(
    "loopgate_shutdown_handbacks", "Executions a shutting-down worker handed back at a step boundary.",
)
NOTIFICATION_FAILURES = Counter(
    "loopgate_notification_failures", "Failed webhook and email deliveries (each failed try), by channel.",
    ["channel"],
)
RETENTION_REMOVED = Counter(
    "loopgate_retention_removed", "What retention removed, by kind (checkpoints, executions).", ["kind"],
)

_graph_of: dict[str, str] = {}


def _graph_name(execution_id: Any) -> str:
    """The graph of an execution, cached per process (a worker records many steps of few executions)."""
    key = str(execution_id)
    name = _graph_of.get(key)
    if name is None:
        from orchestrator.models import Execution

        name = Execution.objects.filter(id=execution_id).values_list("graph_name", flat=True).first() or ""
        if len(_graph_of) > 10_000:
            _graph_of.clear()
        _graph_of[key] = name
    return name


def _on_step_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created or not instance.started_at or not instance.finished_at:
        return
    seconds = (instance.finished_at - instance.started_at).total_seconds()
    STEP_SECONDS.labels(graph=_graph_name(instance.execution_id)).observe(max(seconds, 0.0))


def _on_span_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created or instance.kind != "llm" or not instance.ended_at:
        return
    seconds = (instance.ended_at - instance.started_at).total_seconds()
    LLM_CALL_SECONDS.labels(graph=_graph_name(instance.execution_id), model=instance.model or "").observe(
        max(seconds, 0.0)
    )


_NOTIFICATION_TASKS = {
    "approvals.tasks.deliver_webhook": "webhook",
    "approvals.tasks.email_created": "email",
    "approvals.tasks.email_escalated": "email",
}


def _on_task_retry(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    channel = _NOTIFICATION_TASKS.get(getattr(sender, "name", "") or getattr(request, "task", "") or "")
    if channel:
        NOTIFICATION_FAILURES.labels(channel=channel).inc()


def _on_task_failure(sender: Any = None, **kwargs: Any) -> None:
    channel = _NOTIFICATION_TASKS.get(getattr(sender, "name", "") or "")
    if channel:
        NOTIFICATION_FAILURES.labels(channel=channel).inc()


def _on_lease_lost(**kwargs: Any) -> None:
    LEASE_LOSSES.inc()


def _on_handed_back(**kwargs: Any) -> None:
    SHUTDOWN_HANDBACKS.inc()


def _on_task_done(sender: Any = None, task: Any = None, retval: Any = None, **kwargs: Any) -> None:
    if getattr(task, "name", "") == "orchestrator.tasks.reconcile" and isinstance(retval, int) and retval > 0:
        RECONCILER_REQUEUES.inc(retval)


def connect_event_metrics() -> None:
    """Count events where they happen (called from ``OpsConfig.ready``)."""
    from celery.signals import task_failure, task_postrun, task_retry
    from django.db.models.signals import post_save

    from orchestrator import events
    from traces.models import Span, Step

    post_save.connect(_on_step_saved, sender=Step, dispatch_uid="ops.metrics.step")
    post_save.connect(_on_span_saved, sender=Span, dispatch_uid="ops.metrics.span")
    task_postrun.connect(_on_task_done, dispatch_uid="ops.metrics.task_postrun", weak=False)
    task_retry.connect(_on_task_retry, dispatch_uid="ops.metrics.task_retry", weak=False)
    task_failure.connect(_on_task_failure, dispatch_uid="ops.metrics.task_failure", weak=False)
    events.lease_lost.connect(_on_lease_lost, dispatch_uid="ops.metrics.lease_lost")
    events.handed_back.connect(_on_handed_back, dispatch_uid="ops.metrics.handed_back")


# -- cluster figures from the database ----------------------------------------------------------------------
def _seconds(value: datetime.timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


def _duration(end: str, start: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


class DatabaseCollector(Collector):
    """Cluster-wide figures, one cheap aggregate query each, read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:  # noqa: BLE001 - a scrape must answer; the failure is a metric and a log line
            logger.warning("metrics: the database figures could not be read", exc_info=True)
            up = GaugeMetricFamily("loopgate_database_metrics_up", "1 when the database figures were read.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("loopgate_database_metrics_up", "1 when the database figures were read.")
        up.add_metric([], 1)
        yield up

    def _collect(self) -> Iterator[Metric]:
        from approvals.models import Approval
        from orchestrator.accounting import cost_of
        from orchestrator.models import Execution, TokenCharge
        from traces.models import Step

        now = timezone.now()
        executions = GaugeMetricFamily("loopgate_executions", "Executions by graph and status.", labels=["graph", "status"])
        for row in Execution.objects.order_by().values("graph_name", "status").annotate(n=Count("id")):
            executions.add_metric([row["graph_name"], row["status"]], row["n"])
        yield executions

        budget = CounterMetricFamily("loopgate_budget_stops", "Executions stopped over their token budget, by graph.",
                                     labels=["graph"])
        for row in (Execution.objects.order_by().filter(status=Execution.Status.BUDGET_EXCEEDED)
                    .values("graph_name").annotate(n=Count("id"))):
            budget.add_metric([row["graph_name"]], row["n"])
        yield budget

        queued = Execution.objects.order_by().filter(status=Execution.Status.QUEUED)
        depth = queued.aggregate(n=Count("id"), oldest=Min("created_at"))
        queue = GaugeMetricFamily("loopgate_queue_depth", "Executions queued and not yet claimed by a worker.")
        queue.add_metric([], depth["n"])
        yield queue
        oldest = GaugeMetricFamily("loopgate_queue_oldest_seconds", "Age of the oldest queued execution (0: none).")
        oldest.add_metric([], (now - depth["oldest"]).total_seconds() if depth["oldest"] else 0.0)
        yield oldest
        yield from self._broker_length()

        waited = (Execution.objects.order_by().filter(started_at__isnull=False)
                  .aggregate(n=Count("id"), total=Sum(_duration("started_at", "created_at"))))
        wait = SummaryMetricFamily("loopgate_queue_wait_seconds",
                                   "Time from an execution's creation to its first claim by a worker.")
        wait.add_metric([], count_value=waited["n"], sum_value=_seconds(waited["total"]))
        yield wait

        steps = SummaryMetricFamily("loopgate_steps_seconds", "Recorded super-steps and their time, by graph.",
                                    labels=["graph"])
        for row in (Step.objects.order_by().values("execution__graph_name")
                    .annotate(n=Count("id"), total=Sum(_duration("finished_at", "started_at")))):
            steps.add_metric([row["execution__graph_name"]], count_value=row["n"], sum_value=_seconds(row["total"]))
        yield steps

        pending = GaugeMetricFamily("loopgate_approvals_pending", "Approvals waiting for a reviewer, by graph.",
                                    labels=["graph"])
        for row in (Approval.objects.order_by().filter(status=Approval.Status.PENDING)
                    .values("execution__graph_name").annotate(n=Count("id"))):
            pending.add_metric([row["execution__graph_name"]], row["n"])
        yield pending
        decided = SummaryMetricFamily("loopgate_approval_decision_seconds",
                                      "Time from an approval's creation to its decision, by graph.", labels=["graph"])
        for row in (Approval.objects.order_by().filter(decided_at__isnull=False)
                    .values("execution__graph_name")
                    .annotate(n=Count("id"), total=Sum(_duration("decided_at", "created_at")))):
            decided.add_metric([row["execution__graph_name"]], count_value=row["n"], sum_value=_seconds(row["total"]))
        yield decided

        # The core's ledger: one row per LLM call, refused ones too (orchestrator/budgets/guard.py).
        tokens = CounterMetricFamily("loopgate_llm_tokens", "LLM tokens by graph, model and direction.",
                                     labels=["graph", "model", "direction"])
        calls = CounterMetricFamily("loopgate_llm_calls", "LLM calls by graph, model and status (settled, or "
                                    "refused by the budget before it was made).", labels=["graph", "model", "status"])
        cost = CounterMetricFamily("loopgate_llm_cost", "LLM cost by graph and model (tokens × LOOPGATE_PRICES).",
                                   labels=["graph", "model", "currency"])
        spent: dict[tuple[str, str], list[int]] = {}
        for row in (TokenCharge.objects.order_by().values("execution__graph_name", "model", "status")
                    .annotate(n=Count("id"), input=Sum("input_tokens"), output=Sum("output_tokens"))):
            labels = [row["execution__graph_name"], row["model"]]
            calls.add_metric([*labels, row["status"]], row["n"])
            totals = spent.setdefault((labels[0], labels[1]), [0, 0])
            totals[0] += row["input"] or 0
            totals[1] += row["output"] or 0
        for (graph, model), (input_tokens, output_tokens) in spent.items():
            tokens.add_metric([graph, model, "input"], input_tokens)
            tokens.add_metric([graph, model, "output"], output_tokens)
            price = cost_of(model, input_tokens, output_tokens)
            if price is not None:
                cost.add_metric([graph, model, settings.LOOPGATE_CURRENCY], float(price))
        yield tokens
        yield calls
        yield cost

        yield from self._retention()

    def _broker_length(self) -> Iterator[Metric]:
        """Messages waiting in the Celery queue on Redis (hints, so it may differ from the queued count)."""
        if not settings.REDIS_URL:
            return
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            length = client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
        except redis.RedisError:
            logger.warning("metrics: the broker queue length could not be read", exc_info=True)
            return
        finally:
            client.close()
        broker = GaugeMetricFamily("loopgate_broker_queue_length", "Messages waiting in the Celery queue.",
                                   labels=["queue"])
        broker.add_metric([settings.CELERY_TASK_DEFAULT_QUEUE], length)
        yield broker

    def _retention(self) -> Iterator[Metric]:
        from ops.retention import removed_totals

        removed = CounterMetricFamily("loopgate_retention_removed_rows",
                                      "What retention removed, from its audit lines, by kind.", labels=["kind"])
        for kind, total in removed_totals().items():
            removed.add_metric([kind], total)
        yield removed


def process_registry() -> CollectorRegistry:
    """This process's event metrics; over every process of a prefork pool when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


_database_registry = CollectorRegistry(auto_describe=False)
_database_registry.register(DatabaseCollector())


def render() -> bytes:
    """The text exposition for the web's ``/metrics``: this process's events, then the cluster's figures."""
    return generate_latest(process_registry()) + generate_latest(_database_registry)
