"""The runner: advance one execution on a Celery worker until its graph ends,
interrupts, fails, is cancelled or runs out of budget.

1. Claim the execution with a lease (a conditional update whose row count says
   who won), so two workers never advance the same execution.
2. Work out where to start from the checkpointer, the source of truth: the
   input, the last checkpoint (a crashed run), or a resume value once every
   pending interrupt is decided.
3. Stream the graph (``stream_mode="debug"``), recording every node run and
   every step as it happens; a heartbeat thread extends the lease; at each step
   boundary check for cancellation and a lost lease.
4. Write the outcome, guarded by the lease, and announce it after commit.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import traceback
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from orchestrator import gates
from orchestrator.errors import LeaseLost, LoopgateError
from orchestrator.jsonable import to_jsonable
from orchestrator.models import Execution

logger = logging.getLogger(__name__)
Status = Execution.Status


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _lease_seconds() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.LOOPGATE_LEASE_SECONDS)


class StopRun(Exception):
    """Raised inside the stream loop to stop at a step boundary."""

    def __init__(self, status: str, reason: str = "") -> None:
        super().__init__(reason or status)
        self.status = status
        self.reason = reason


# -- 1. lease ---------------------------------------------------------------------------
def execution_claim(*, execution_id: UUID, worker: str) -> Execution | None:
    """Take the lease if the execution is queued, or running with an expired lease."""
    now = timezone.now()
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_expires_at__lt=now) | Q(
        status=Status.RUNNING, lease_expires_at__isnull=True
    )
    won = Execution.objects.filter(claimable, id=execution_id).update(
        status=Status.RUNNING,
        lease_owner=worker,
        lease_expires_at=now + _lease_seconds(),
        started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
        updated_at=now,
    )
    if won != 1:
        return None
    return Execution.objects.get(id=execution_id)


class Heartbeat:
    """Extends the lease every third of its length while a run goes on."""

    def __init__(self, execution_id: UUID, worker: str) -> None:
        self.execution_id, self.worker = execution_id, worker
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{execution_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        interval = max(1.0, settings.LOOPGATE_LEASE_SECONDS / 3)
        extended_at = timezone.now()
        try:
            while not self._stop.wait(interval):
                try:
                    extended = Execution.objects.filter(
                        id=self.execution_id, lease_owner=self.worker, status=Status.RUNNING
                    ).update(lease_expires_at=timezone.now() + _lease_seconds())
                except Exception:  # noqa: BLE001 - retried until the lease would lapse
                    logger.warning("heartbeat of %s failed", self.execution_id, exc_info=True)
                    close_old_connections()
                    if timezone.now() - extended_at > _lease_seconds() * 0.8:
                        # The lease may lapse and another worker take over: stop at the next step.
                        self.lost.set()
                        return
                    continue
                if extended != 1:
                    self.lost.set()
                    return
                extended_at = timezone.now()
        finally:
            close_old_connections()


def _finish(execution_id: UUID, worker: str, status: str, **fields: Any) -> bool:
    """Write the outcome, only while this worker still holds the lease."""
    now = timezone.now()
    values: dict[str, Any] = {"status": status, "lease_owner": "", "lease_expires_at": None, "updated_at": now}
    if status in Execution.FINISHED:
        values["finished_at"] = now
    values.update(fields)
    with transaction.atomic():
        done = Execution.objects.filter(id=execution_id, lease_owner=worker, status=Status.RUNNING).update(**values)
        if done == 1:
            from traces import live

            transaction.on_commit(partial(live.announce_execution, execution_id, status))
    return done == 1


# -- 2. where to start ----------------------------------------------------------------------
@dataclass
class Start:
    input: Any = None
    wait: bool = False  # still waiting for people: go back to interrupted
    done: bool = False  # the graph had already ended
    cancel: str = ""    # a rejected breakpoint cancels the execution


def _pending_interrupts(snapshot: Any) -> list[dict[str, Any]]:
    out = []
    checkpoint = snapshot.config.get("configurable", {})
    for task in snapshot.tasks:
        for item in task.interrupts:
            out.append(
                {
                    "id": item.id,
                    "value": item.value,
                    "node": task.name,
                    "checkpoint_id": checkpoint.get("checkpoint_id", ""),
                    "checkpoint_ns": checkpoint.get("checkpoint_ns", ""),
                    "response_schema": getattr(item, "response_schema", None),
                }
            )
    return out


def _where_to_start(graph: Any, config: dict[str, Any], execution: Execution) -> Start:
    from approvals import services as approvals
    from approvals.models import Approval

    snapshot = graph.get_state(config)
    if not snapshot.config or "checkpoint_id" not in snapshot.config.get("configurable", {}):
        return Start(input=execution.input)
    pending = _pending_interrupts(snapshot)
    if pending:
        answers = approvals.approval_resume_map(execution_id=execution.id, interrupt_ids=[p["id"] for p in pending])
        if answers is None:
            return Start(wait=True)
        return Start(input=Command(resume=answers))
    if not snapshot.next:
        return Start(done=True)
    # A hold at this checkpoint: a static breakpoint, or a fork that wrote past a gate
    # (its approval was made with the fork, traces/services.py).
    held = gates.breakpoint_hold(graph, snapshot)
    checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
    approval = Approval.objects.filter(execution_id=execution.id,
                                       interrupt_id=gates.hold_interrupt_id(checkpoint_id)).first()
    if held is not None or approval is not None:
        if approval is None or approval.status == Approval.Status.PENDING:
            return Start(wait=True)
        if approval.status in (Approval.Status.REJECTED, Approval.Status.CANCELLED, Approval.Status.EXPIRED):
            what = f"The breakpoint at {', '.join(held[0])}" if held else f"The hold at {approval.node}"
            return Start(cancel=f"{what} was {approval.get_status_display()}.")
    return Start(input=None)  # continue from the last checkpoint (a crashed or approved run)


# -- 3. the run ------------------------------------------------------------------------------------
def execution_advance(*, execution_id: UUID, worker: str | None = None) -> None:
    worker = worker or worker_name()
    close_old_connections()
    try:
        execution = execution_claim(execution_id=execution_id, worker=worker)
        if execution is None:
            return  # someone else holds it, or it is not runnable: nothing to do
        if execution.cancel_requested:
            _finish(execution_id, worker, Status.CANCELLED)
            return
        from traces import live

        live.announce_execution(execution_id, Status.RUNNING)
        with Heartbeat(execution_id, worker) as heartbeat:
            _run(execution, worker, heartbeat)
    except LeaseLost:
        logger.warning("lease on %s lost; another worker carries on", execution_id)
    finally:
        close_old_connections()


def _run(execution: Execution, worker: str, heartbeat: Heartbeat) -> None:
    from orchestrator import registry
    from traces.callbacks import TraceCallbackHandler
    from traces.recorder import TraceRecorder

    recorder = TraceRecorder(execution.id)
    try:
        entry = registry.get_graph(execution.graph_name)
        graph = entry.compiled
        config: dict[str, Any] = {
            "configurable": {"thread_id": execution.thread_id},
            "recursion_limit": execution.recursion_limit,
            "callbacks": [_callback_handler(execution, TraceCallbackHandler)],
            "metadata": {"loopgate_execution_id": execution.thread_id, "loopgate_graph": execution.graph_name},
        }
        start = _where_to_start(graph, config, execution)
        if start.wait:
            _hand_off(graph, config, execution, worker)
            return
        if start.cancel:
            _finish(execution.id, worker, Status.CANCELLED, error={"reason": start.cancel})
            return
        if not start.done:
            # durability="sync": a checkpoint is saved before its event reaches us,
            # so a step is never recorded for a checkpoint a crash could lose.
            for _mode, event in graph.stream(start.input, config, stream_mode=["debug"], durability="sync"):
                step = recorder.on_event(event)
                if step is not None or event.get("type") == "checkpoint":
                    _at_step_boundary(execution.id, heartbeat)
        _hand_off(graph, config, execution, worker)
    except StopRun as stop:
        _finish(execution.id, worker, stop.status, error={"reason": stop.reason} if stop.reason else None,
                state=_state_or_none(execution, config))
    except LeaseLost:
        raise
    except GraphRecursionError as exc:
        reason = (
            f"Stopped at the step limit: the graph ran {execution.recursion_limit} steps without ending "
            f"(recursion limit {execution.recursion_limit}). A loop that never meets its exit condition "
            "usually causes this; raise the limit if the graph really needs more steps."
        )
        _finish(execution.id, worker, Status.FAILED, state=_state_or_none(execution, config),
                error={"type": type(exc).__name__, "message": str(exc), "reason": reason, "node": recorder.failed_node,
                       "traceback": traceback.format_exc()})
    except LoopgateError as exc:
        _finish(execution.id, worker, getattr(exc, "execution_status", Status.FAILED),
                state=_state_or_none(execution, locals().get("config")),
                error={"type": type(exc).__name__, "message": exc.message, "reason": exc.message,
                       "node": recorder.failed_node, "code": exc.code, **exc.extra})
    except Exception as exc:  # noqa: BLE001 - whatever the graph raises is recorded on the execution
        logger.info("execution %s failed: %s", execution.id, exc)
        _finish(execution.id, worker, Status.FAILED, state=_state_or_none(execution, locals().get("config")),
                error={"type": type(exc).__name__, "message": str(exc), "node": recorder.failed_node,
                       "reason": f"{type(exc).__name__} in node {recorder.failed_node or '?'}: {exc}",
                       "traceback": traceback.format_exc()})


def _callback_handler(execution: Execution, base: type) -> Any:
    from orchestrator import budgets

    return budgets.handler_for(execution, base)


def _at_step_boundary(execution_id: UUID, heartbeat: Heartbeat) -> None:
    if heartbeat.lost.is_set():
        raise LeaseLost("The lease expired during the run.")
    row = Execution.objects.filter(id=execution_id).values("cancel_requested", "lease_owner").first()
    if row is None:
        raise StopRun(Status.CANCELLED, "The execution was deleted.")
    if row["lease_owner"] != heartbeat.worker:
        raise LeaseLost("Another worker holds the lease now.")
    if row["cancel_requested"]:
        raise StopRun(Status.CANCELLED, "Cancelled by a user.")


def _state_or_none(execution: Execution, config: dict[str, Any] | None) -> Any:
    if config is None:
        return None
    try:
        from orchestrator import registry

        return to_jsonable(registry.get_graph(execution.graph_name).compiled.get_state(config).values)
    except Exception:  # noqa: BLE001 - the state is a courtesy on a failure path
        return None


def _hand_off(graph: Any, config: dict[str, Any], execution: Execution, worker: str) -> None:
    """After the stream: succeeded, or interrupted with every pending interrupt
    handed to the approvals app, in one transaction with the status."""
    from approvals import services as approvals

    snapshot = graph.get_state(config)
    state = to_jsonable(snapshot.values)
    pending = _pending_interrupts(snapshot)
    held = None if pending or not snapshot.next else gates.breakpoint_hold(graph, snapshot)
    if not pending and held is None:
        if snapshot.next:
            # Stopped with work left and no interrupt: treat as a breakpoint on the next nodes.
            held = (list(snapshot.next), "before")
        else:
            _finish(execution.id, worker, Status.SUCCEEDED, state=state)
            return
    with transaction.atomic():
        if not _finish(execution.id, worker, Status.INTERRUPTED, state=state):
            raise LeaseLost("The lease expired before the interrupt was handed over.")
        # Our UPDATE holds the row lock: a cancel committed before it is visible
        # now (one after it finds `interrupted` and cancels the approvals itself).
        if Execution.objects.filter(id=execution.id, cancel_requested=True).update(
            status=Status.CANCELLED, finished_at=timezone.now(), error={"reason": "Cancelled by a user."}
        ):
            transaction.on_commit(partial(_announce_status, execution.id, Status.CANCELLED))
            return
        if pending:
            rows = approvals.approval_create_for_interrupts(execution_id=execution.id, interrupts=pending)  # type: ignore[arg-type]
        else:
            assert held is not None
            rows = [approvals.approval_create_for_breakpoint(
                execution_id=execution.id, checkpoint_id=snapshot.config["configurable"]["checkpoint_id"],
                nodes=held[0], when=held[1],
            )]
        # A reviewer may have decided the last approval while this run was
        # re-handing it over (the execution was `running`, so the decision
        # could not queue it). Our UPDATE above holds the execution's row lock,
        # which the deciding transaction takes first, so this read sees every
        # decision committed before us; later ones find `interrupted` and queue.
        if rows and not any(row.is_pending for row in rows):
            from orchestrator.tasks import advance

            Execution.objects.filter(id=execution.id, status=Status.INTERRUPTED).update(status=Status.QUEUED)
            transaction.on_commit(partial(advance.delay, str(execution.id)))
        transaction.on_commit(_announce_approvals)


def _announce_status(execution_id: UUID, status: str) -> None:
    from traces import live

    live.announce_execution(execution_id, status)


def _announce_approvals() -> None:
    try:
        from approvals import live
    except ImportError:
        return
    live.announce_approvals_changed()


# -- 4. reconciliation ----------------------------------------------------------------------------
def executions_reconcile(*, queued_older_than: float | None = None) -> int:
    """Re-queue executions whose broker message may be lost: queued ones not
    picked up for a while, and running ones whose lease expired."""
    from orchestrator.tasks import advance

    now = timezone.now()
    grace = datetime.timedelta(
        seconds=queued_older_than if queued_older_than is not None else settings.LOOPGATE_RECONCILE_SECONDS
    )
    ids = list(
        Execution.objects.filter(
            Q(status=Status.QUEUED, updated_at__lt=now - grace)
            | Q(status=Status.RUNNING, lease_expires_at__lt=now)
            | Q(status=Status.RUNNING, lease_expires_at__isnull=True)
        ).values_list("id", flat=True)[:500]
    )
    # Touch the queued ones: a backlog is re-sent once per grace period, not at every tick.
    Execution.objects.filter(id__in=ids, status=Status.QUEUED).update(updated_at=now)
    for execution_id in ids:
        advance.delay(str(execution_id))
    if ids:
        logger.info("reconciler re-queued %d execution(s)", len(ids))
    return len(ids)
