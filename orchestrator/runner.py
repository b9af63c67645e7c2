"""The runner: advance one execution on a Celery worker until its graph ends,
interrupts, fails, is cancelled or runs out of budget.

1. Claim the execution with a lease (a conditional update whose row count says
   who won), so two workers never advance the same execution.
2. Work out where to start from the checkpointer, the source of truth: the
   input, the last checkpoint (a crashed run), or a resume value once every
   pending interrupt is decided.
3. Stream the graph (``stream_mode="debug"``, plus the modes readers asked for, published
   to the execution's event log, ``orchestrator.streams``), handing every debug event to the run
   observers the feature apps registered (``orchestrator.hooks``: the traces app
   records node runs, steps and calls); a heartbeat thread extends the lease; at
   each step boundary check for cancellation and a lost lease.
4. Write the outcome through ``orchestrator.services`` (the one owner of the
   status), guarded by the lease; what waits for people goes to the human gate.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from orchestrator import boundary, events, gates, hooks, logcontext, registry, services, shutdown, streams
from orchestrator.checkpointer import LEASE_KEY
from orchestrator.errors import LeaseLost, LoopgateError
from orchestrator.hooks import PendingInterrupt
from orchestrator.jsonable import to_jsonable
from orchestrator.models import Execution

logger = logging.getLogger(__name__)
Status = Execution.Status


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _dead_local_owner(execution_id: UUID) -> str:
    """The lease token of a running execution whose holder was a process of this host that is gone; "" if not."""
    owner = (Execution.objects.filter(id=execution_id, status=Status.RUNNING)
             .values_list("lease_owner", flat=True).first()) or ""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isascii() or not pid_text.isdigit():
        return ""
    pid = int(pid_text)
    if pid == os.getpid() or _process_alive(pid):
        return ""
    return owner


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped by its parent is a zombie: gone all the same
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


class HandBack(Exception):
    """Raised at a step boundary while the worker shuts down: the execution goes back to the queue."""


class StopRun(Exception):
    """Raised inside the stream loop to stop at a step boundary."""

    def __init__(self, status: str, reason: str = "") -> None:
        super().__init__(reason or status)
        self.status = status
        self.reason = reason


# -- 1. lease (claimed through services.execution_claim) ---------------------------------------
class Heartbeat:
    """Extends the lease every quarter of its length while a run goes on."""

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
        # Four beats a lease: one or two slow database round trips never cost a live worker its lease.
        interval = max(0.5, settings.LOOPGATE_LEASE_SECONDS / 4)
        extended_at = timezone.now()
        try:
            while not self._stop.wait(interval):
                try:
                    extended = Execution.objects.filter(
                        id=self.execution_id, lease_owner=self.worker, status=Status.RUNNING
                    ).update(lease_expires_at=timezone.now() + services.lease_length())
                except Exception:  # noqa: BLE001 - retried until the lease would lapse
                    logger.warning("heartbeat of %s failed", self.execution_id, exc_info=True)
                    close_old_connections()
                    if timezone.now() - extended_at > services.lease_length() * 0.8:
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
    return services.execution_finish(execution_id=execution_id, worker=worker, status=status, **fields)


# -- 2. where to start ----------------------------------------------------------------------
@dataclass
class Start:
    input: Any = None
    wait: bool = False  # still waiting for people: go back to interrupted
    done: bool = False  # the graph had already ended
    cancel: str = ""    # a rejected breakpoint cancels the execution
    checkpoint_id: str = ""  # a run on a shared thread may start at an older checkpoint (a fork there)


def _pending_interrupts(snapshot: Any) -> list[PendingInterrupt]:
    out: list[PendingInterrupt] = []
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
    human_gate = hooks.human_gate()
    snapshot = graph.get_state(config)
    fresh = _fresh_on_shared_thread(graph, config, execution, snapshot)
    if fresh is not None:
        return fresh
    if not snapshot.config or "checkpoint_id" not in snapshot.config.get("configurable", {}):
        return Start(input=execution.input)
    pending = _pending_interrupts(snapshot)
    if pending:
        answers = human_gate.resume_map(execution_id=execution.id, interrupt_ids=[p["id"] for p in pending])
        if answers is None:
            return Start(wait=True)
        return Start(input=Command(resume=answers))
    if not snapshot.next:
        return Start(done=True)
    # A hold at this checkpoint: a static breakpoint, or a fork that wrote past a gate
    # (its hold was made with the fork, traces/services.py).
    held = gates.breakpoint_hold(graph, snapshot)
    checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
    status = human_gate.hold_status(execution_id=execution.id, checkpoint_id=checkpoint_id)
    if held is not None or status is not None:
        if status is None or status == "pending":
            return Start(wait=True)
        if status in ("rejected", "cancelled", "expired"):
            what = f"The breakpoint at {', '.join(held[0])}" if held else "The hold"
            return Start(cancel=f"{what} was {status}.")
    return Start(input=None)  # continue from the last checkpoint (a crashed or approved run)


def _fresh_on_shared_thread(graph: Any, config: dict[str, Any], execution: Execution, snapshot: Any) -> Start | None:
    """A run on a shared thread with an input or a command of its own starts with it, on
    top of the thread's state, until it has written a checkpoint (its metadata names
    the execution); after a crash, or once resumed, it goes on from the thread's newest
    checkpoint. None: the usual rules apply (a run without input continues from there)."""
    start = execution.run_start
    if not start or (start.get("input") is None and not start.get("command")):
        return None
    mine = {"loopgate_execution_id": str(execution.id)}
    if (snapshot.metadata or {}).get("loopgate_execution_id") == mine["loopgate_execution_id"]:
        return None
    if next(iter(graph.checkpointer.list(config, filter=mine, limit=1)), None) is not None:
        return None  # it ran; the head is someone else's (a state update since): not a fresh start
    command = start.get("command")
    return Start(input=Command(**command) if command else start["input"],
                 checkpoint_id=start.get("checkpoint_id") or "")


def _run_options(execution: Execution) -> dict[str, Any]:
    """``stream()`` options a run on a shared thread carries: its context and breakpoints."""
    start = execution.run_start or {}
    return {key: start[key] for key in ("context", "interrupt_before", "interrupt_after") if start.get(key)}


# -- 3. the run ------------------------------------------------------------------------------------
def execution_advance(*, execution_id: UUID, worker: str | None = None) -> None:
    worker = worker or worker_name()
    close_old_connections()
    with logcontext.bound(execution_id=str(execution_id), worker=worker):
        _advance(execution_id, worker)


def _advance(execution_id: UUID, worker: str) -> None:
    try:
        execution = services.execution_claim(execution_id=execution_id, worker=worker)
        if execution is None:
            # A prefork child killed mid-step: Celery sees the worker lost and redelivers the task at
            # once (acks_late, reject_on_worker_lost). The lease is still that dead process's: take it
            # now rather than when it lapses.
            dead = _dead_local_owner(execution_id)
            if dead:
                execution = services.execution_claim(execution_id=execution_id, worker=worker, dead_owner=dead)
                if execution is not None:
                    logger.warning("took %s over from %s, a process of this host that died", execution_id, dead)
        if execution is None:
            return  # someone else holds it, or it is not runnable: nothing to do
        logcontext.set_fields(graph=execution.graph_name)
        if execution.cancel_requested:
            _finish(execution_id, worker, Status.CANCELLED)
            return
        with Heartbeat(execution_id, worker) as heartbeat:
            _run(execution, worker, heartbeat)
    except LeaseLost:
        logger.warning("lease on %s lost; another worker carries on", execution_id)
        events.lease_lost.send(sender=None, execution_id=execution_id, worker=worker)
    finally:
        close_old_connections()


class _Observers:
    """The run observers the feature apps registered, seen as one."""

    def __init__(self, execution: Execution) -> None:
        self.all = hooks.run_observers(execution)
        self.callbacks = [callback for observer in self.all for callback in observer.callbacks]

    def on_event(self, event: dict[str, Any]) -> bool:
        closed = False
        for observer in self.all:
            closed = observer.on_event(event) or closed
        return closed

    def on_stop(self, error: BaseException | None) -> None:
        for observer in self.all:
            try:
                observer.on_stop(error)
            except Exception:  # noqa: BLE001 - an observer must never change how a run ends
                logger.warning("run observer %r failed to stop", observer, exc_info=True)

    @property
    def failed_node(self) -> str | None:
        return next((o.failed_node for o in self.all if o.failed_node), None)


def _run(execution: Execution, worker: str, heartbeat: Heartbeat) -> None:
    observers = _Observers(execution)
    error: BaseException | None = None
    try:
        _stream(execution, worker, heartbeat, observers)
    except BaseException as exc:
        error = exc
        raise
    finally:
        observers.on_stop(error)


def _stream(execution: Execution, worker: str, heartbeat: Heartbeat, observers: _Observers) -> None:
    config: dict[str, Any] | None = None
    try:
        entry = registry.get_graph(execution.graph_name)
        graph = entry.compiled
        config = {
            # The lease token rides along: every checkpoint write is fenced by it, so a worker
            # that lost its lease (cut off from the network, then back) writes nothing. (The
            # execution's own id: on a shared thread it is not the thread's.)
            "configurable": {**((execution.run_start or {}).get("configurable") or {}),
                             "thread_id": execution.thread_id,
                             LEASE_KEY: {"execution_id": str(execution.id), "token": worker}},
            "recursion_limit": execution.recursion_limit,
            "callbacks": observers.callbacks,
            "metadata": {"loopgate_execution_id": str(execution.id), "loopgate_graph": execution.graph_name},
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
            at = config if not start.checkpoint_id else {
                **config, "configurable": {**config["configurable"], "checkpoint_id": start.checkpoint_id}}
            # Besides "debug" (the observers), the modes someone asked for are published to
            # the execution's event log as they come (orchestrator/streams.py).
            publisher = streams.Publisher(execution.id)
            for chunk in graph.stream(start.input, at, stream_mode=publisher.stream_modes, durability="sync",
                                      subgraphs=publisher.subgraphs, **_run_options(execution)):
                ns, mode, event = publisher.split(chunk)
                publisher.publish(ns, mode, event)
                if mode != "debug" or ns:
                    continue
                closed_step = observers.on_event(event)
                if event.get("step") is not None:
                    logcontext.set_fields(step=event["step"])
                if closed_step or event.get("type") == "checkpoint":
                    _at_step_boundary(execution.id, heartbeat)
        _hand_off(graph, config, execution, worker)
    except HandBack:
        # This worker is shutting down: queued again at once (lease released, the advance sent
        # after commit), so another worker resumes from the checkpoint just written.
        if services.execution_release(execution_id=execution.id, worker=worker):
            logger.info("execution %s handed back: this worker is shutting down", execution.id)
            events.handed_back.send(sender=None, execution_id=execution.id, worker=worker)
    except StopRun as stop:
        _finish(execution.id, worker, stop.status, error={"reason": stop.reason} if stop.reason else None,
                state=_state_or_none(execution, config))
    except LeaseLost:
        raise
    except GraphRecursionError as exc:
        reason = (
            f"Stopped at the step limit: the graph took {execution.recursion_limit} steps in one run without "
            f"ending (its recursion limit). A loop that never meets its exit condition usually causes this; "
            "raise the limit if the graph really needs more steps."
        )
        _finish(execution.id, worker, Status.FAILED, state=_state_or_none(execution, config),
                error={"type": type(exc).__name__, "message": str(exc), "reason": reason, "node": observers.failed_node,
                       "traceback": traceback.format_exc()})
    except LoopgateError as exc:
        _finish(execution.id, worker, getattr(exc, "execution_status", Status.FAILED),
                state=_state_or_none(execution, config),
                error={"type": type(exc).__name__, "message": exc.message, "reason": exc.message,
                       "node": observers.failed_node, "code": exc.code, **exc.extra})
    except Exception as exc:  # noqa: BLE001 - whatever the graph raises is recorded on the execution
        logger.info("execution %s failed: %s", execution.id, exc)
        _finish(execution.id, worker, Status.FAILED, state=_state_or_none(execution, config),
                error={"type": type(exc).__name__, "message": str(exc), "node": observers.failed_node,
                       "reason": f"{type(exc).__name__} in node {observers.failed_node or '?'}: {exc}",
                       "traceback": traceback.format_exc()})


def _at_step_boundary(execution_id: UUID, heartbeat: Heartbeat) -> None:
    if heartbeat.lost.is_set():
        raise LeaseLost("The lease expired during the run.")
    # The step's own write may have read the row already (orchestrator/boundary.py).
    row = boundary.take(execution_id) or (
        Execution.objects.filter(id=execution_id).values("cancel_requested", "lease_owner").first())
    if row is None:
        raise StopRun(Status.CANCELLED, "The execution was deleted.")
    if row["lease_owner"] != heartbeat.worker:
        raise LeaseLost("Another worker holds the lease now.")
    if row["cancel_requested"]:
        raise StopRun(Status.CANCELLED, "Cancelled by a user.")
    if shutdown.draining():
        raise HandBack()


def _state_or_none(execution: Execution, config: dict[str, Any] | None) -> Any:
    if config is None:
        return None
    try:
        return to_jsonable(registry.get_graph(execution.graph_name).compiled.get_state(config).values)
    except Exception:  # noqa: BLE001 - the state is a courtesy on a failure path
        return None


def _hand_off(graph: Any, config: dict[str, Any], execution: Execution, worker: str) -> None:
    """After the stream: succeeded, or interrupted with every pending interrupt (or the breakpoint
    that holds it) handed to the human gate, in one transaction with the status."""
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
    human_gate = hooks.human_gate()

    def hand_over() -> list[bool]:
        if pending:
            return human_gate.hand_over(execution_id=execution.id, interrupts=pending)
        assert held is not None
        return [human_gate.hold(execution_id=execution.id, checkpoint_id=snapshot.config["configurable"]["checkpoint_id"],
                                nodes=held[0], when=held[1])]

    if not services.execution_interrupt(execution_id=execution.id, worker=worker, state=state, hand_over=hand_over):
        raise LeaseLost("The lease expired before the interrupt was handed over.")


# -- 4. reconciliation ----------------------------------------------------------------------------
def executions_reconcile(*, queued_older_than: float | None = None) -> int:
    """Re-queue executions whose broker message may be lost (``services.executions_requeue_lost``)."""
    return services.executions_requeue_lost(queued_older_than=queued_older_than)
