"""Writes of the LangGraph-compatible API: threads, their state, and runs.

Runs are executions: they start through ``orchestrator.services``, are cancelled
through it, and a ``command.resume`` is a decision through ``approvals.services``,
checked exactly as the inbox checks it. Nothing here writes an execution's status.
"""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agent_api import resume as resumes
from agent_api import selectors, shapes
from agent_api.errors import NotSupported
from agent_api.models import QueuedRun, Run, Thread
from approvals import payloads
from approvals import services as approvals
from approvals.models import Approval
from orchestrator import roles
from orchestrator import services as executions
from orchestrator.errors import InvalidState, LoopgateError, PermissionDenied
from orchestrator.jsonable import to_jsonable
from orchestrator.models import Execution

Status = Execution.Status
COPY = "__copy__"  # LangGraph's as_node for a checkpoint written unchanged (traces/services.py replays so too)
# Checkpoint metadata of a state update written past a human gate: a run from that
# checkpoint waits for a reviewer first (README, "Time travel never skips a person").
GATE_KEY = "loopgate_gate"
INTERRUPT_WAIT_SECONDS = 30  # how long a run with multitask_strategy "interrupt" waits for the busy one to stop


def _require_operator(user: User | None, what: str) -> None:
    if user is not None and not roles.can_operate(user):
        raise PermissionDenied(f"Only operators and admins may {what}.")


# --- threads ----------------------------------------------------------------------------------------------


def thread_create(*, user: User | None, thread_id: str | None = None, metadata: dict[str, Any] | None = None,
                  if_exists: str = "raise") -> Thread:
    """A new empty thread; ``if_exists="do_nothing"`` returns an existing one with that id."""
    _require_operator(user, "create threads")
    if if_exists not in ("raise", "do_nothing"):
        raise ValidationError({"if_exists": "Use raise or do_nothing."})
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError({"metadata": "The metadata must be a JSON object."})
    try:
        uid = UUID(str(thread_id)) if thread_id else None
    except ValueError:
        raise ValidationError({"thread_id": "A thread id is a UUID."}) from None
    with transaction.atomic():
        if uid is not None:
            existing = Thread.objects.filter(id=uid).first()
            if existing is not None:
                if if_exists == "do_nothing":
                    return existing
                raise InvalidState(f"Thread {uid} already exists.", code="conflict")
        extra = {"id": uid} if uid is not None else {}
        return Thread.objects.create(metadata=metadata or {}, created_by=user, **extra)


def thread_patch(*, user: User | None, thread: Thread, metadata: dict[str, Any] | None) -> Thread:
    """Merge ``metadata`` into the thread's (LangGraph's PATCH)."""
    _require_operator(user, "change threads")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError({"metadata": "The metadata must be a JSON object."})
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(id=thread.id)
        thread.metadata = {**thread.metadata, **(metadata or {})}
        thread.save(update_fields=["metadata", "updated_at"])
    return thread


def thread_delete(*, user: User | None, thread: Thread) -> None:
    """Delete the thread and its checkpoints. Its executions stay in the executions list (their
    trace keeps its steps). Refused while a run is queued or running: cancel it first."""
    _require_operator(user, "delete threads")
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(id=thread.id)
        if selectors.thread_active_executions(thread).exists():
            raise InvalidState("A run of this thread is pending or running: cancel it before deleting the thread.")
        waiting = Execution.objects.filter(agent_run__thread=thread, status=Status.INTERRUPTED)
        for execution_id in waiting.values_list("id", flat=True):
            executions.execution_cancel(execution_id=execution_id, user=user, reason="Its thread was deleted.")
        graph = selectors.thread_graph(thread)
        if graph is not None:
            graph.checkpointer.delete_thread(str(thread.id))
        thread.delete()


def thread_copy(*, user: User | None, thread: Thread) -> Thread:
    """A new thread with a copy of this one's checkpoints (its runs stay with the original)."""
    _require_operator(user, "copy threads")
    with transaction.atomic():
        copy = Thread.objects.create(metadata=dict(thread.metadata), graph_name=thread.graph_name, created_by=user)
        graph = selectors.thread_graph(thread)
        if graph is not None:
            graph.checkpointer.copy_thread(str(thread.id), str(copy.id))
    return copy


def thread_update_state(*, user: User | None, thread: Thread, values: Any, as_node: str | None,
                        checkpoint: dict[str, Any] | None) -> dict[str, Any]:
    """LangGraph's ``update_state``: a new checkpoint on the thread, at its newest checkpoint
    or at ``checkpoint`` (a branch from there), with ``values`` written as ``as_node``.

    Time travel never skips a person: a write as a human gate, or at a checkpoint a
    breakpoint holds, is marked on the new checkpoint, and a run from it waits for a
    reviewer first (``run_start``). Refused while a run of the thread is pending or running.
    """
    from orchestrator import registry
    from traces import services as timetravel
    from traces import state as states

    _require_operator(user, "update a thread's state")
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(id=thread.id)
        latest = selectors.thread_latest_execution(thread)
        if not thread.graph_name or latest is None:
            raise InvalidState("This thread has no run yet, so no graph: start a run on it first.")
        if selectors.thread_active_executions(thread).exists():
            raise InvalidState("A run of this thread is pending or running; update its state once it stops.")
        if latest.status == Status.INTERRUPTED:
            # Its question was asked of the state being replaced: a run from the new state asks
            # again (or, past a gate, waits for a reviewer first).
            executions.execution_cancel(execution_id=latest.id, user=user,
                                        reason="Superseded: its thread's state was updated.")
        entry = registry.get_graph(thread.graph_name)
        graph = entry.compiled
        at = selectors.thread_config(thread, checkpoint)
        snapshot = graph.get_state(at)
        if not (snapshot.config or {}).get("configurable", {}).get("checkpoint_id"):
            raise InvalidState("This thread has no checkpoint to update yet.")
        checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
        checkpoint_ns = (checkpoint or {}).get("checkpoint_ns") or ""
        if as_node:
            pregel = states.pregel_for_namespace(graph, checkpoint_ns)
            if as_node != COPY and as_node not in states.node_names(pregel):
                known = ", ".join(states.node_names(pregel))
                raise ValidationError({"as_node": f"{as_node!r} is not a node of this graph; it has: {known}."})
        pregel = states.pregel_for_namespace(graph, checkpoint_ns)
        crossing = timetravel.gate_crossed(entry, graph, pregel, latest, checkpoint_id=checkpoint_id,
                                           checkpoint_ns=checkpoint_ns,
                                           as_node=None if as_node == COPY else (as_node or None))
        metadata: dict[str, Any] = {}
        if crossing is not None:
            # LangGraph keeps only plain values of a config's metadata: one key each, the values as JSON text.
            metadata.update({GATE_KEY: crossing[0], f"{GATE_KEY}_reason": crossing[1],
                             f"{GATE_KEY}_by": user.get_username() if user is not None else "",
                             f"{GATE_KEY}_values": json.dumps(to_jsonable(values) if isinstance(values, dict) else {})})
        config = {"configurable": {**at["configurable"], "checkpoint_id": checkpoint_id}, "metadata": metadata}
        try:
            written = graph.update_state(config, values, as_node=as_node or None)
        except (ValueError, TypeError, KeyError) as exc:  # LangGraph's InvalidUpdateError is a ValueError
            raise ValidationError({"values": f"LangGraph refused the update: {exc}"}) from None
        Thread.objects.filter(id=thread.id).update(updated_at=timezone.now())
    return {"checkpoint": shapes.checkpoint(written)}


# --- runs --------------------------------------------------------------------------------------------------


def _gate_mark(graph: Any, thread: Thread, checkpoint_id: str | None) -> dict[str, Any] | None:
    config = selectors.thread_config(thread, {"checkpoint_id": checkpoint_id} if checkpoint_id else None)
    saved = graph.checkpointer.get_tuple(config)
    if saved is None:
        return None
    metadata = saved.metadata or {}
    if not metadata.get(GATE_KEY):
        return None
    try:
        values = json.loads(metadata.get(f"{GATE_KEY}_values") or "{}")
    except ValueError:
        values = {}
    return {"gate": metadata[GATE_KEY], "reason": metadata.get(f"{GATE_KEY}_reason", ""), "values": values}


def run_start(*, user: User | None, thread: Thread, entry: Any, input: Any = None,
              command: dict[str, Any] | None = None, checkpoint_id: str | None = None,
              configurable: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
              interrupt_before: list[str] | None = None, interrupt_after: list[str] | None = None,
              recursion_limit: int | None = None, metadata: dict[str, Any] | None = None,
              multitask_strategy: str = "reject", kwargs: dict[str, Any] | None = None, webhook: str = "",
              queued: QueuedRun | None = None) -> Run | QueuedRun:
    """Start a run of ``entry`` on the thread: an execution on its LangGraph thread.

    1. Lock the thread; refuse (409) when a run of it is pending or running, or
       when it belongs to another graph.
    2. A run waiting for review on the thread is superseded by a run with input
       (cancelled, its approvals with it); continuing it without input or
       ``command.resume`` is refused: that would skip the person it waits for.
    3. Start the execution (roles, budgets and daily limits as any start). A run
       from an older checkpoint without input replays it: its copy becomes the
       thread's newest checkpoint, written in the execution's name.
    4. A run from a checkpoint written past a gate waits for a reviewer first.

    With ``multitask_strategy="enqueue"`` on a busy thread (or one with runs queued
    before), the run is queued instead (a ``QueuedRun``, ``pending``) and started
    when the thread's runs have ended (``runs_start_queued``), as ``queued``.
    """
    from orchestrator.services import execution_start_on_thread

    _require_operator(user, "start runs")
    if multitask_strategy not in ("reject", "interrupt", "enqueue", None):
        raise NotSupported(f"multitask_strategy {multitask_strategy!r} is not served yet; 'reject' (a busy thread "
                           "answers 409), 'interrupt' and 'enqueue' are.")
    if command and set(command) - {"update", "goto"}:
        raise NotSupported("command accepts update and goto here; resume goes alone.")
    if command and "goto" in command:
        raise NotSupported("command.goto is not served yet: a jump could go past a human gate.")
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(id=thread.id)
        if thread.graph_name and thread.graph_name != entry.name:
            raise InvalidState(f"This thread carries runs of the graph {thread.graph_name!r}, not {entry.name!r}.")
        busy = selectors.thread_active_executions(thread).exists()
        if multitask_strategy == "enqueue" and queued is None and (busy or _waiting_in_queue(thread).exists()):
            return QueuedRun.objects.create(
                thread=thread, graph_name=entry.name, created_by=user,
                request={"input": input, "command": command, "checkpoint_id": checkpoint_id,
                         "configurable": configurable, "context": context, "interrupt_before": interrupt_before,
                         "interrupt_after": interrupt_after, "recursion_limit": recursion_limit,
                         "metadata": metadata, "kwargs": kwargs, "webhook": webhook})
        if busy:
            raise InvalidState("Thread is busy: a run of it is pending or running (multitask_strategy 'reject').",
                               code="conflict")
        graph = entry.compiled
        head = graph.get_state(selectors.thread_config(thread))
        head_id = (head.config or {}).get("configurable", {}).get("checkpoint_id")
        head_owner = (head.metadata or {}).get("loopgate_execution_id") if head_id else None
        latest = selectors.thread_latest_execution(thread)
        if latest is not None and latest.status == Status.INTERRUPTED:
            if input is None and not command and not checkpoint_id and head_owner == str(latest.id):
                raise InvalidState(
                    "A run of this thread waits for review: resume it with command.resume (reviewers) or decide it "
                    "in the inbox; a run without input would go on without that answer.")
            executions.execution_cancel(execution_id=latest.id, user=user,
                                        reason="Superseded by a new run on its thread.")
        starts_at = checkpoint_id if checkpoint_id and checkpoint_id != head_id else None
        mark = _gate_mark(graph, thread, starts_at or head_id) if head_id else None
        if mark is not None and (input is not None or command):
            raise InvalidState(
                f"This checkpoint was written past “{mark.get('gate')}”, which asks a person: run from it without "
                "input (the run waits for a reviewer there), or update the state again.")
        execution = execution_start_on_thread(
            graph_name=entry.name, thread_id=str(thread.id), user=user, input=input, command=command,
            checkpoint_id=starts_at if input is not None or command else "", configurable=configurable,
            context=context, interrupt_before=interrupt_before, interrupt_after=interrupt_after,
            recursion_limit=recursion_limit, execution_id=queued.id if queued is not None else None,
        )
        if queued is not None:
            queued.delete()
        hold_at = head_id
        if starts_at and input is None and not command:
            config = {**selectors.thread_config(thread, {"checkpoint_id": starts_at}),
                      "metadata": {"loopgate_execution_id": str(execution.id)}}
            written = graph.update_state(config, None, as_node=COPY)
            hold_at = written["configurable"]["checkpoint_id"]
        if mark is not None and hold_at:
            approvals.approval_create_for_fork_hold(
                execution_id=execution.id, checkpoint_id=hold_at, gate=str(mark.get("gate", "")),
                reason=str(mark.get("reason", "")), values=mark.get("values") or {},
                parent=latest or execution, forked_by=user,
            )
        if not thread.graph_name:
            thread.graph_name = entry.name
            thread.metadata = {**thread.metadata, "graph_id": entry.name,
                               "assistant_id": shapes.assistant_id_for(entry.name)}
        thread.save(update_fields=["graph_name", "metadata", "updated_at"])
        metadata = {**(metadata or {}), "graph_id": entry.name, "assistant_id": shapes.assistant_id_for(entry.name)}
        return Run.objects.create(execution=execution, thread=thread, metadata=metadata,
                                  multitask_strategy=multitask_strategy or "reject", kwargs=kwargs or {},
                                  webhook=webhook)


def _waiting_in_queue(thread: Thread) -> Any:
    return QueuedRun.objects.filter(thread=thread, cancelled=False, error="")


def runs_start_queued(*, execution_id: Any = None, thread_id: Any = None) -> Run | None:
    """An execution stopped: if it was the last active run of its thread, start the thread's
    oldest queued run (in the name of whoever queued it). A thread whose run waits for people
    keeps its queue until that run ends (a queued run must not supersede a question). A queued
    run that is refused now (a role lost, a daily limit reached) keeps the reason, ``error``,
    and the next one is tried. Called after commit by the status listener (agent_api/apps.py),
    and by whoever waits for a queued run (should that listener's process have died first)."""
    from orchestrator import registry

    if thread_id is None:
        thread_id = Run.objects.filter(execution_id=execution_id).values_list("thread_id", flat=True).first()
    if thread_id is None:
        return None
    while True:
        with transaction.atomic():
            thread = Thread.objects.select_for_update().filter(id=thread_id).first()
            if thread is None or selectors.thread_active_executions(thread).exists():
                return None
            latest = selectors.thread_latest_execution(thread)
            if latest is not None and latest.status == Status.INTERRUPTED:
                return None
            queued = _waiting_in_queue(thread).first()
            if queued is None:
                return None
            request = queued.request
            try:
                with transaction.atomic():
                    if queued.created_by is None:
                        raise PermissionDenied("The user who queued this run no longer exists.")
                    started = run_start(
                        user=queued.created_by, thread=thread, entry=registry.get_graph(queued.graph_name),
                        input=request.get("input"), command=request.get("command"),
                        checkpoint_id=request.get("checkpoint_id"), configurable=request.get("configurable"),
                        context=request.get("context"), interrupt_before=request.get("interrupt_before"),
                        interrupt_after=request.get("interrupt_after"),
                        recursion_limit=request.get("recursion_limit"), metadata=request.get("metadata"),
                        multitask_strategy="enqueue", kwargs=request.get("kwargs"),
                        webhook=request.get("webhook") or "", queued=queued)
                assert isinstance(started, Run)
                return started
            except (LoopgateError, ValidationError) as exc:
                queued.error = getattr(exc, "message", None) or "; ".join(getattr(exc, "messages", [str(exc)]))
                queued.save(update_fields=["error", "updated_at"])


def queued_run_cancel(*, user: User | None, queued: QueuedRun) -> QueuedRun:
    _require_operator(user, "cancel runs")
    with transaction.atomic():
        queued = QueuedRun.objects.select_for_update().get(id=queued.id)
        queued.cancelled = True
        queued.save(update_fields=["cancelled", "updated_at"])
    return queued


def runs_interrupt_busy(*, user: User | None, thread: Thread) -> None:
    """multitask_strategy "interrupt": cancel the thread's pending or running runs and wait,
    at most ``INTERRUPT_WAIT_SECONDS``, until they have stopped at a step boundary. Call outside
    a transaction (the worker must see the cancel); the start that follows checks the thread
    again and answers 409 if it is still busy."""
    _require_operator(user, "interrupt runs")
    busy = list(selectors.thread_active_executions(thread).values_list("id", flat=True))
    for execution_id in busy:
        try:
            executions.execution_cancel(execution_id=execution_id, user=user,
                                        reason="Interrupted by a new run on its thread.")
        except InvalidState:
            pass  # it ended meanwhile
    deadline = time.monotonic() + INTERRUPT_WAIT_SECONDS
    while busy and time.monotonic() < deadline:
        if not Execution.objects.filter(id__in=busy, status__in=(Status.QUEUED, Status.RUNNING)).exists():
            return
        time.sleep(0.1)


def run_resume(*, user: User, thread: Thread, resume: Any) -> Run:
    """``command.resume``: decide what the thread's waiting run asks, as the inbox does.

    ``resume`` answers the one pending interrupt, or maps interrupt ids to answers.
    Every answer is read as inbox decisions and checked before any is stored
    (``ValidationError``, nothing saved); each is then recorded by
    ``approvals.services.approval_decide`` with ``user`` (roles, four eyes, audit),
    which queues the execution once none is pending.
    """
    if not roles.can_decide(user):
        raise PermissionDenied("Only reviewers and admins may resume interrupted runs: a resume is a decision.")
    latest = selectors.thread_latest_execution(thread)
    if latest is None or latest.status != Status.INTERRUPTED:
        raise InvalidState("No run of this thread waits for a resume.")
    pending = list(Approval.objects.filter(execution=latest, status=Approval.Status.PENDING).order_by("created_at"))
    if not pending:
        raise InvalidState("No run of this thread waits for a resume.")
    by_id = {approval.interrupt_id: approval for approval in pending}
    if isinstance(resume, dict) and resume and set(resume) <= set(by_id):
        answers = dict(resume)
    elif len(pending) == 1:
        answers = {pending[0].interrupt_id: resume}
    else:
        raise ValidationError({"command.resume": "Several interrupts wait: resume with a map from interrupt id to "
                                                 f"answer ({', '.join(by_id)})."})
    plan = []
    for interrupt_id, value in answers.items():
        approval = by_id[interrupt_id]
        decisions = resumes.decisions_for(approval.format, approval.actions, value)
        try:
            payloads.check_decisions(approval.actions, decisions)
        except ValidationError as exc:
            raise ValidationError({f"command.resume.{key}": messages
                                   for key, messages in exc.message_dict.items()}) from None
        comment = value.get("comment", "") if isinstance(value, dict) and isinstance(value.get("comment"), str) else ""
        plan.append((approval.id, decisions, comment))
    with transaction.atomic():
        for approval_id, decisions, comment in plan:
            approvals.approval_decide(approval_id=approval_id, user=user, decisions=decisions, comment=comment)
    return Run.objects.select_related("execution", "thread").get(execution_id=latest.id)


def run_cancel(*, user: User | None, run: Run, action: str = "interrupt") -> Run:
    """Cancel the run's execution: at once when it waits, at its next step when it runs."""
    if action == "rollback":
        raise NotSupported("action 'rollback' is not served yet: cancel with 'interrupt' (the run's checkpoints stay).")
    executions.execution_cancel(execution_id=run.execution_id, user=user, reason="Cancelled through the API.")
    run.execution.refresh_from_db()
    return run
