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
from agent_api.models import QueuedRun, Run, Thread
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


def matches(have: Any, want: dict[str, Any] | None) -> bool:
    """LangGraph's metadata / values filter: every given key has the given value (objects: contained)."""
    if not want:
        return True
    if not isinstance(have, dict):
        return False
    for key, value in want.items():
        if isinstance(value, dict):
            if not matches(have.get(key), value):
                return False
        elif have.get(key) != value:
            return False
    return True


SORT_FIELDS = {"thread_id": "id", "created_at": "created_at", "updated_at": "updated_at",
               "state_updated_at": "updated_at"}


def thread_search(*, user: Any, metadata: dict[str, Any] | None, values: dict[str, Any] | None,
                  status: str | None, ids: list[str] | None, sort_by: str, descending: bool,
                  page: tuple[int, int] | None) -> Any:
    """Threads matching LangGraph's search filters: a page of thread bodies, or (``page=None``) their count.

    Metadata is matched on the rows; a thread's status and values need its executions
    and its newest checkpoint, so they are read only for the threads they must filter
    or sort, and otherwise only for the page answered.
    """
    threads = thread_list_for_user(user=user)
    if ids is not None:
        threads = threads.filter(id__in=ids)
    if sort_by in SORT_FIELDS:
        field = SORT_FIELDS[sort_by]
        threads = threads.order_by(f"-{field}" if descending else field, "-id" if descending else "id")
    rows = [(row_id, meta) for row_id, meta in threads.values_list("id", "metadata") if matches(meta, metadata)]
    if status is None and values is None and sort_by in SORT_FIELDS:
        if page is None:
            return len(rows)
        offset, limit = page
        wanted = [row_id for row_id, _meta in rows[offset:offset + limit]]
        by_id = Thread.objects.in_bulk(wanted)
        return [thread_body(by_id[row_id]) for row_id in wanted]
    by_id = Thread.objects.in_bulk([row_id for row_id, _meta in rows])
    bodies = [thread_body(by_id[row_id]) for row_id, _meta in rows]
    bodies = [b for b in bodies if (status is None or b["status"] == status) and matches(b["values"], values)]
    if sort_by not in SORT_FIELDS:
        bodies.sort(key=lambda b: b[sort_by], reverse=descending)
    if page is None:
        return len(bodies)
    offset, limit = page
    return bodies[offset:offset + limit]


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


def run_get_for_user(*, user: Any, thread: Thread, run_id: Any) -> Run | QueuedRun:
    """The run, or the queued run not started yet (multitask_strategy "enqueue")."""
    uid = _uuid(run_id, "run")
    run = Run.objects.select_related("execution").filter(thread=thread, execution_id=uid).first()
    if run is not None:
        return run
    queued = QueuedRun.objects.filter(thread=thread, id=uid).first()
    if queued is not None:
        return queued
    raise Http404(f"Run {run_id} not found in thread {thread.id}.")


def run_or_queued(run_id: Any) -> Run | QueuedRun | None:
    """The run as it stands now: a queued run becomes a run (same id) when its turn comes."""
    run = Run.objects.select_related("execution", "thread").filter(execution_id=run_id).first()
    return run if run is not None else QueuedRun.objects.filter(id=run_id).first()


def queued_list(*, thread: Thread) -> QuerySet[QueuedRun]:
    return QueuedRun.objects.filter(thread=thread).order_by("-created_at")


def run_list(*, thread: Thread) -> QuerySet[Run]:
    return Run.objects.select_related("execution").filter(thread=thread).order_by("-created_at")


def run_body(run: Run | QueuedRun) -> dict[str, Any]:
    if isinstance(run, QueuedRun):
        return shapes.queued_run(run)
    return shapes.run(run, run.execution)


def run_output(run: Run | QueuedRun) -> Any:
    """What ``runs.wait`` and ``join`` answer once the run stops: the thread's values (with
    ``__interrupt__`` while it waits), or ``{"__error__"}`` for a run that failed."""
    if isinstance(run, QueuedRun):
        if run.error:
            return {"__error__": {"error": "QueuedRunRefused", "message": run.error}}
        snapshot = thread_snapshot(run.thread)
        return shapes.state(snapshot)["values"] if snapshot is not None else {}
    execution = run.execution
    if execution.status in (Status.FAILED, Status.BUDGET_EXCEEDED):
        error = execution.error or {}
        return {"__error__": {"error": error.get("type") or error.get("code") or execution.status,
                              "message": error.get("reason") or error.get("message") or execution.status}}
    if execution.status == Status.SUCCEEDED and execution.state is not None:
        # The run's own final state: later runs (a queue) may have moved the thread on since.
        return execution.state
    snapshot = thread_snapshot(run.thread)
    if snapshot is None:
        return execution.state or {}
    values = shapes.state(snapshot)["values"]
    interrupts = [shapes.interrupt(i) for i in getattr(snapshot, "interrupts", ())]
    if interrupts and isinstance(values, dict):
        values = {**values, "__interrupt__": interrupts}
    return values
