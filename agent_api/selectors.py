"""Reads of the LangGraph-compatible API, with their permission checks.

Threads and runs are seen by whoever may see the executions of their graph
(every role, as ``orchestrator.selectors.execution_list_for_user`` says).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404

from agent_api import shapes
from agent_api.models import Run, Thread
from orchestrator import registry, roles
from orchestrator.errors import GraphNotFound
from orchestrator.models import Execution

Status = Execution.Status


def _visible(user: Any) -> bool:
    return bool(roles.user_roles(user))


def assistant_entry(assistant_id: str) -> Any:
    """The registered graph an assistant id names: its uuid5 (as LangGraph derives it) or the graph's name."""
    for entry in registry.all_entries():
        if assistant_id in (entry.name, shapes.assistant_id_for(entry.name)):
            if entry.is_broken:
                registry.get_graph(entry.name)  # raises GraphBroken, saying why
            return entry
    raise GraphNotFound(f"No assistant {assistant_id!r}: it is neither a registered graph's name nor its "
                        "assistant id.", extra={"assistant_id": assistant_id})


def assistant_list() -> list[Any]:
    return [entry for entry in registry.all_entries() if not entry.is_broken]


def thread_list_for_user(*, user: Any) -> QuerySet[Thread]:
    if not _visible(user):
        return Thread.objects.none()
    return Thread.objects.all()


def thread_get_for_user(*, user: Any, thread_id: Any) -> Thread:
    try:
        return thread_list_for_user(user=user).get(id=_uuid(thread_id, "thread"))
    except Thread.DoesNotExist:
        raise Http404(f"Thread {thread_id} not found.") from None


def _uuid(value: Any, what: str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise Http404(f"{what.capitalize()} {value} not found: not a UUID.") from None


def thread_latest_execution(thread: Thread) -> Execution | None:
    run = thread.runs.select_related("execution").order_by("-created_at").first()
    return run.execution if run is not None else None


def thread_active_executions(thread: Thread) -> QuerySet[Execution]:
    return Execution.objects.filter(agent_run__thread=thread, status__in=(Status.QUEUED, Status.RUNNING))


def thread_status(thread: Thread) -> str:
    """idle, busy, interrupted or error, from the executions on the thread."""
    if thread_active_executions(thread).exists():
        return "busy"
    latest = thread_latest_execution(thread)
    if latest is None:
        return "idle"
    if latest.status in (Status.INTERRUPTED, Status.CANCELLED):
        return "interrupted"  # LangGraph's word for a thread whose last run was cancelled, too
    if latest.status in (Status.FAILED, Status.BUDGET_EXCEEDED):
        return "error"
    return "idle"


def thread_graph(thread: Thread) -> Any | None:
    """The compiled graph of the thread's runs; None before its first run."""
    if not thread.graph_name:
        return None
    return registry.get_graph(thread.graph_name).compiled


def thread_config(thread: Thread, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": str(thread.id), "checkpoint_ns": ""}
    for key in ("checkpoint_id", "checkpoint_ns"):
        if checkpoint and checkpoint.get(key):
            configurable[key] = checkpoint[key]
    return {"configurable": configurable}


def thread_snapshot(thread: Thread, checkpoint: dict[str, Any] | None = None, *, subgraphs: bool = False) -> Any:
    graph = thread_graph(thread)
    if graph is None:
        return None
    snapshot = graph.get_state(thread_config(thread, checkpoint), subgraphs=subgraphs)
    if not snapshot.config or not snapshot.config.get("configurable", {}).get("checkpoint_id"):
        return None
    return snapshot


def thread_state(thread: Thread, checkpoint: dict[str, Any] | None = None, *, subgraphs: bool = False) -> dict[str, Any]:
    snapshot = thread_snapshot(thread, checkpoint, subgraphs=subgraphs)
    if snapshot is None:
        if checkpoint and checkpoint.get("checkpoint_id"):
            raise Http404(f"Checkpoint {checkpoint['checkpoint_id']} not found in thread {thread.id}.")
        return shapes.empty_state()
    return shapes.state(snapshot)


def thread_body(thread: Thread) -> dict[str, Any]:
    snapshot = thread_snapshot(thread)
    interrupts: dict[str, list[dict[str, Any]]] = {}
    values: Any = None
    if snapshot is not None:
        values = shapes.state(snapshot)["values"]
        for task in snapshot.tasks:
            if task.interrupts:
                interrupts[task.id] = [shapes.interrupt(i) for i in task.interrupts]
    return shapes.thread(thread, status=thread_status(thread), values=values, interrupts=interrupts)


def thread_history(thread: Thread, *, limit: int, before: dict[str, Any] | None,
                   metadata: dict[str, Any] | None, checkpoint: dict[str, Any] | None) -> list[dict[str, Any]]:
    graph = thread_graph(thread)
    if graph is None:
        return []
    config = thread_config(thread, checkpoint)
    before_config = thread_config(thread, before) if before else None
    return [shapes.state(snapshot) for snapshot in
            graph.get_state_history(config, limit=limit, before=before_config, filter=metadata or None)]


def run_get_for_user(*, user: Any, thread: Thread, run_id: Any) -> Run:
    try:
        return Run.objects.select_related("execution").get(thread=thread, execution_id=_uuid(run_id, "run"))
    except Run.DoesNotExist:
        raise Http404(f"Run {run_id} not found in thread {thread.id}.") from None


def run_list(*, thread: Thread) -> QuerySet[Run]:
    return Run.objects.select_related("execution").filter(thread=thread).order_by("-created_at")


def run_body(run: Run) -> dict[str, Any]:
    return shapes.run(run, run.execution)


def run_output(run: Run) -> Any:
    """What ``runs.wait`` and ``join`` answer once the run stops: the thread's values (with
    ``__interrupt__`` while it waits), or ``{"__error__"}`` for a run that failed."""
    execution = run.execution
    if execution.status in (Status.FAILED, Status.BUDGET_EXCEEDED):
        error = execution.error or {}
        return {"__error__": {"error": error.get("type") or error.get("code") or execution.status,
                              "message": error.get("reason") or error.get("message") or execution.status}}
    snapshot = thread_snapshot(run.thread)
    if snapshot is None:
        return execution.state or {}
    values = shapes.state(snapshot)["values"]
    interrupts = [shapes.interrupt(i) for i in getattr(snapshot, "interrupts", ())]
    if interrupts and isinstance(values, dict):
        values = {**values, "__interrupt__": interrupts}
    return values
