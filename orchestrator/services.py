"""The one owner of an execution's life.

Every change of ``Execution.status`` happens in a function of this module, each
in a transaction, each doing its side effects once, after commit: the advance
task queued (``_queue_advance``) and the change announced to the feature apps
(``hooks.status_changed``: live pages, OpenTelemetry export). The runner,
approvals, budgets and time travel call these; none of them writes the field
(``Execution`` refuses writes outside ``owning_status()``).

The transitions::

    start, fork ─▶ queued ─claim─▶ running ─finish─▶ succeeded | failed | cancelled | budget_exceeded
                     ▲  ▲              │  └─interrupt─▶ interrupted ─resume─▶ queued
                     │  └──requeue─────┤ (lease lost / released)      └─cancel─▶ cancelled
                     └── budget_resume ◀── budget_exceeded
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from orchestrator import hooks, registry, roles, streams
from orchestrator.budgets.policy import budget_for_start
from orchestrator.errors import InvalidState, PermissionDenied
from orchestrator.models import Execution
from orchestrator.models.execution import owning_status

logger = logging.getLogger(__name__)
Status = Execution.Status
MAX_RECURSION_LIMIT = 10_000
RESERVED_CONFIGURABLE = ("thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map", "loopgate_lease")


def _queue_advance(execution_id: str) -> None:
    from orchestrator.tasks import advance as advance_task

    advance_task.delay(execution_id)


def _changed(execution_id: UUID, status: str, *, queue: bool = False) -> None:
    """After commit: queue the advance (when the execution is ready to run) and announce the change."""
    if queue:
        transaction.on_commit(partial(_queue_advance, str(execution_id)))
    transaction.on_commit(partial(hooks.status_changed, execution_id, status))
    transaction.on_commit(partial(_close_stream, execution_id, status))


def _close_stream(execution_id: UUID, status: str) -> None:
    try:
        streams.status_changed(execution_id, status)
    except Exception:  # noqa: BLE001 - readers also see the status in the database; never fail the change
        logger.warning("could not close the event log of %s", execution_id, exc_info=True)


def lease_length() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.LOOPGATE_LEASE_SECONDS)


# -- start -------------------------------------------------------------------------------------------------


def execution_start(
    *,
    graph_name: str,
    input: Any,
    user: User | None,
    token_budget: int | None = None,
    recursion_limit: int | None = None,
    require_input_keys: bool = False,
) -> Execution:
    """Create a queued execution of a registered graph and queue it for a worker after commit.

    ``require_input_keys``: refuse input without a key the graph's input schema
    requires (Loopgate's own pages and API); LangGraph's server takes partial input.

    Raises ``GraphNotFound`` for an unknown graph, ``GraphBroken`` for one that
    failed to load, ``PermissionDenied`` for a user who may not start executions,
    ``DailyTokenLimitReached`` when the graph's daily token limit is used up,
    and ``ValidationError`` (naming the field) for bad input.
    """
    if user is not None and not roles.can_operate(user):
        raise PermissionDenied("Only operators and admins may start executions.")
    entry = registry.get_graph(graph_name)  # raises GraphNotFound / GraphBroken
    if not isinstance(input, dict):
        raise ValidationError({"input": "The input must be a JSON object."})
    entry.validate_input(input)  # raises ValidationError naming the field
    if recursion_limit is None:
        recursion_limit = entry.recursion_limit or settings.LOOPGATE_DEFAULT_RECURSION_LIMIT
    if not isinstance(recursion_limit, int) or not 1 <= recursion_limit <= MAX_RECURSION_LIMIT:
        raise ValidationError({"recursion_limit": f"The step limit must be between 1 and {MAX_RECURSION_LIMIT}."})
    if require_input_keys:
        missing = [key for key in entry.input_schema.get("required") or [] if key not in input]
        if missing:
            raise ValidationError({key: f"The input needs {key!r}: this graph's input schema requires it."
                                   for key in missing})
    with transaction.atomic():
        # The given budget (never above the graph's unless an admin starts it), else the graph's,
        # else the default; raises DailyTokenLimitReached once the graph's daily limit is used.
        token_budget = budget_for_start(graph_name=entry.name, requested=token_budget, user=user)
        execution = Execution.objects.create(
            graph_name=entry.name,
            graph_version=entry.version,
            input=input,
            created_by=user,
            token_budget=token_budget,
            recursion_limit=recursion_limit,
        )
        _changed(execution.id, execution.status, queue=True)
    return execution


def execution_start_on_thread(
    *,
    graph_name: str,
    thread_id: str,
    user: User | None,
    input: Any = None,
    command: dict[str, Any] | None = None,
    checkpoint_id: str = "",
    configurable: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    interrupt_before: list[str] | None = None,
    interrupt_after: list[str] | None = None,
    recursion_limit: int | None = None,
    execution_id: UUID | None = None,
) -> Execution:
    """Create a queued execution that runs on ``thread_id``, a LangGraph thread shared
    with other executions (a run of the LangGraph-compatible API), and queue it after commit.

    It starts with ``input`` (or ``command``: ``update`` / ``goto``) on top of the
    thread's state, at ``checkpoint_id`` when given (a fork there, as LangGraph
    does), else at the thread's newest checkpoint; with neither input nor command
    it continues from there. Everything else is as ``execution_start``: roles,
    budgets and daily limits, input checked against the graph's schema. The
    caller keeps two executions from running on one thread at once. ``execution_id``: the id
    the caller already gave the run (a run it queued until its thread was free).
    """
    if user is not None and not roles.can_operate(user):
        raise PermissionDenied("Only operators and admins may start executions.")
    entry = registry.get_graph(graph_name)  # raises GraphNotFound / GraphBroken
    if input is not None and not isinstance(input, dict):
        raise ValidationError({"input": "The input must be a JSON object."})
    if isinstance(input, dict):
        entry.validate_input(input)  # raises ValidationError naming the field
    if recursion_limit is None:
        recursion_limit = entry.recursion_limit or settings.LOOPGATE_DEFAULT_RECURSION_LIMIT
    if not isinstance(recursion_limit, int) or not 1 <= recursion_limit <= MAX_RECURSION_LIMIT:
        raise ValidationError({"recursion_limit": f"The step limit must be between 1 and {MAX_RECURSION_LIMIT}."})
    # The caller's configurable keys reach the graph; the ones that say which checkpoint, thread or
    # lease a run writes are Loopgate's alone.
    configurable = {key: value for key, value in (configurable or {}).items()
                    if key not in RESERVED_CONFIGURABLE and not key.startswith("__")}
    run_start = {"input": input, "command": command or None, "checkpoint_id": checkpoint_id or None,
                 "configurable": configurable, "context": context or None,
                 "interrupt_before": interrupt_before or None, "interrupt_after": interrupt_after or None}
    with transaction.atomic():
        token_budget = budget_for_start(graph_name=entry.name, requested=None, user=user)
        execution = Execution.objects.create(
            graph_name=entry.name,
            graph_version=entry.version,
            input=input if isinstance(input, dict) else {},
            created_by=user,
            token_budget=token_budget,
            recursion_limit=recursion_limit,
            langgraph_thread=thread_id,
            run_start=run_start,
            forked_from_checkpoint=checkpoint_id or "",
            **({"id": execution_id} if execution_id is not None else {}),
        )
        _changed(execution.id, execution.status, queue=True)
    return execution


def execution_create_fork(
    *, parent: Execution, user: User | None, graph_version: str, checkpoint_id: str, input: Any = None,
) -> Execution:
    """The row of a fork: a queued execution of the parent's graph, queued for a worker after commit.
    Call inside the fork's transaction (orchestrator/timetravel.py writes its thread there too).

    Under the graph's budget rules, as a start is: the parent's budget where the
    user could start with it (an admin's raise above the graph's budget carries over
    to admins' forks only; others get the graph's budget). Raises
    ``DailyTokenLimitReached`` when the graph's daily token limit is used up.
    """
    try:
        token_budget = budget_for_start(graph_name=parent.graph_name, requested=parent.token_budget,
                                                user=user)
    except ValidationError as exc:
        if "token_budget" not in getattr(exc, "error_dict", {}):
            raise
        token_budget = budget_for_start(graph_name=parent.graph_name, requested=None, user=user)
    fork = Execution.objects.create(
        graph_name=parent.graph_name,
        graph_version=graph_version,
        input=parent.input if input is None else input,
        created_by=user,
        token_budget=token_budget,
        recursion_limit=parent.recursion_limit,
        parent=parent,
        forked_from_checkpoint=checkpoint_id,
    )
    _changed(fork.id, fork.status, queue=True)
    return fork


# -- a worker's run ---------------------------------------------------------------------------------------


def execution_claim(*, execution_id: UUID, worker: str, dead_owner: str = "") -> Execution | None:
    """Take the lease if the execution is queued, or running with an expired lease (its worker died),
    or running under ``dead_owner``, a lease token whose process is known to be gone (the runner checks).

    A conditional update: its row count says who won, so two workers never run
    the same execution. ``worker`` is the lease token, unique per claim; every
    checkpoint the run writes is fenced by it (orchestrator/checkpointer).
    """
    now = timezone.now()
    claimable = (Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_expires_at__lt=now)
                 | Q(status=Status.RUNNING, lease_expires_at__isnull=True))
    if dead_owner:
        claimable |= Q(status=Status.RUNNING, lease_owner=dead_owner)
    with owning_status():
        won = Execution.objects.filter(claimable, id=execution_id).update(
            status=Status.RUNNING,
            lease_owner=worker,
            lease_expires_at=now + lease_length(),
            started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
            updated_at=now,
            tokens_reserved=0,  # a new claim: no LLM call of an earlier worker is in flight any more
        )
    if won != 1:
        return None
    hooks.status_changed(execution_id, Status.RUNNING)
    return Execution.objects.get(id=execution_id)


def execution_finish(*, execution_id: UUID, worker: str, status: str, **fields: Any) -> bool:
    """Write a run's outcome (any status but ``interrupted``), only while ``worker`` still holds the lease.
    Ending it cancels what still waits for people. Returns whether the lease was still held."""
    now = timezone.now()
    values: dict[str, Any] = {"status": status, "lease_owner": "", "lease_expires_at": None, "updated_at": now,
                              **fields}
    if status in Execution.FINISHED:
        values["finished_at"] = now
    with transaction.atomic(), owning_status():
        done = Execution.objects.filter(id=execution_id, lease_owner=worker, status=Status.RUNNING).update(**values)
        if done == 1:
            if status in Execution.FINISHED:
                hooks.human_gate().cancel_pending(execution_id=execution_id)
            _changed(execution_id, status, queue=status == Status.QUEUED)
    return done == 1


def execution_release(*, execution_id: UUID, worker: str) -> bool:
    """Hand a running execution back (its worker is shutting down): queued again at once, so
    another worker resumes it from its last checkpoint without waiting for the lease to lapse."""
    return execution_finish(execution_id=execution_id, worker=worker, status=Status.QUEUED)


def execution_interrupt(*, execution_id: UUID, worker: str, state: Any,
                        hand_over: Callable[[], list[bool]]) -> bool:
    """The run stopped to wait for people: ``interrupted``, with ``hand_over()`` turning what it waits
    on into approvals in the same transaction. Returns False when the lease was lost.

    1. The conditional update takes the execution's row lock: a cancel committed
       before it is seen now (the execution is cancelled instead); one after it
       finds ``interrupted`` and cancels the approvals itself.
    2. ``hand_over()`` returns, per approval, whether it is decided: a reviewer may
       have decided while this run re-handed it over (the execution was
       ``running``, so their decision could not queue it). Deciders lock the row
       first, so this read sees every decision committed before us; when all are
       decided the execution is queued again here.
    """
    now = timezone.now()
    with transaction.atomic(), owning_status():
        done = Execution.objects.filter(id=execution_id, lease_owner=worker, status=Status.RUNNING).update(
            status=Status.INTERRUPTED, state=state, lease_owner="", lease_expires_at=None, updated_at=now,
        )
        if done != 1:
            return False
        if Execution.objects.filter(id=execution_id, cancel_requested=True).update(
            status=Status.CANCELLED, finished_at=now, error={"reason": "Cancelled by a user."}
        ):
            hooks.human_gate().cancel_pending(execution_id=execution_id)
            _changed(execution_id, Status.CANCELLED)
            return True
        decided = hand_over()
        if decided and all(decided):
            Execution.objects.filter(id=execution_id, status=Status.INTERRUPTED).update(status=Status.QUEUED)
            _changed(execution_id, Status.QUEUED, queue=True)
        else:
            _changed(execution_id, Status.INTERRUPTED)
    return True


def execution_resume(*, execution_id: UUID) -> bool:
    """Everything it waited for is decided: queue the interrupted execution again. Call inside the
    transaction that made the last decision, holding the execution's row lock (two reviewers deciding
    the last two approvals at once cannot both miss it). Returns whether it was resumed."""
    with owning_status():
        won = Execution.objects.filter(id=execution_id, status=Status.INTERRUPTED).update(
            status=Status.QUEUED, updated_at=timezone.now()
        )
    if won == 1:
        _changed(execution_id, Status.QUEUED, queue=True)
    return won == 1


def execution_budget_resume(*, execution_id: UUID, token_budget: int) -> bool:
    """An admin raised the budget of an execution stopped over budget: queue it again with the new budget.
    Call inside the raising transaction (orchestrator/budgets); a conditional update, so two admins
    clicking at once resume it once. Returns whether this call resumed it."""
    with owning_status():
        resumed = Execution.objects.filter(id=execution_id, status=Status.BUDGET_EXCEEDED).update(
            status=Status.QUEUED, token_budget=token_budget, error=None, finished_at=None, updated_at=timezone.now(),
        )
    if resumed == 1:
        _changed(execution_id, Status.QUEUED, queue=True)
    return resumed == 1


# -- people ------------------------------------------------------------------------------------------------


def execution_cancel(*, execution_id: Any, user: User | None, reason: str = "") -> Execution:
    """Cancel an execution. Queued or waiting ones stop at once (what waits for people is cancelled
    too); a running one stops at its next step boundary (the runner sees ``cancel_requested``).
    ``reason`` is shown on the execution when it stops at once. ``user=None`` is Loopgate itself."""
    if user is not None and not roles.can_operate(user):
        raise PermissionDenied("Only operators and admins may cancel executions.")
    with transaction.atomic(), owning_status():
        execution = Execution.objects.select_for_update().get(id=execution_id)
        if execution.is_finished:
            raise InvalidState(f"This execution already ended ({execution.get_status_display()}).")
        execution.cancel_requested = True
        if execution.status == Status.RUNNING:
            execution.save(update_fields=["cancel_requested", "updated_at"])
            return execution
        execution.status = Status.CANCELLED
        execution.finished_at = timezone.now()
        execution.lease_owner, execution.lease_expires_at = "", None
        fields = ["status", "cancel_requested", "finished_at", "lease_owner", "lease_expires_at", "updated_at"]
        if reason:
            execution.error = {"reason": reason}
            fields.append("error")
        execution.save(update_fields=fields)
        hooks.human_gate().cancel_pending(execution_id=execution.id)
        _changed(execution.id, execution.status)
    return execution


def execution_mark_failed(*, execution_id: UUID, reason: str, by: str) -> Execution:
    """Someone gave up on a stuck execution (``ops/repair.py``): ``failed`` at once, whatever it was
    doing, with the reason; its lease is cleared and what waits for people is cancelled. A worker
    still running it finds its lease gone at its next step boundary, and its writes are fenced.
    Raises ``InvalidState`` when it already ended."""
    with transaction.atomic(), owning_status():
        execution = Execution.objects.select_for_update().get(id=execution_id)
        if execution.is_finished:
            raise InvalidState(f"This execution already ended ({execution.get_status_display()}).")
        execution.status = Status.FAILED
        execution.finished_at = timezone.now()
        execution.lease_owner, execution.lease_expires_at = "", None
        execution.error = {"type": "MarkedFailed", "message": reason, "reason": f"Marked failed by {by}: {reason}"}
        execution.save(update_fields=["status", "finished_at", "lease_owner", "lease_expires_at", "error",
                                      "updated_at"])
        hooks.human_gate().cancel_pending(execution_id=execution.id)
        _changed(execution.id, execution.status)
    return execution


# -- the reconciler -----------------------------------------------------------------------------------------


def executions_requeue_lost(*, queued_older_than: float | None = None) -> int:
    """Re-queue executions whose broker message may be lost: queued ones not picked up for a
    while, and running ones whose lease expired (their worker died). The database is the truth."""
    now = timezone.now()
    grace = datetime.timedelta(
        seconds=queued_older_than if queued_older_than is not None else settings.LOOPGATE_QUEUED_GRACE_SECONDS
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
        _queue_advance(str(execution_id))
    if ids:
        logger.info("reconciler re-queued %d execution(s)", len(ids))
    return len(ids)
