"""The contexts of the trace pages' live regions, shared by views (whole pages,
htmx fragments) and consumers (fragments pushed over the WebSocket)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from orchestrator import roles
from orchestrator.models import Execution
from traces import selectors
from traces import state as states
from traces.models import Step


def header_context(*, execution: Execution, user: Any) -> dict[str, Any]:
    forked_step = None
    if execution.parent_id and execution.forked_from_checkpoint:
        forked_step = (
            Step.objects.filter(execution_id=execution.parent_id, checkpoint_id=execution.forked_from_checkpoint)
            .values_list("step", flat=True)
            .first()
        )
    return {
        "execution": execution,
        "parent": execution.parent if execution.parent_id else None,
        "forked_step": forked_step,
        "cost": selectors.execution_cost(execution=execution),
        "pending_approvals": selectors.execution_pending_approvals(execution=execution),
        "can_operate": roles.can_operate(user),
        "fork_count": execution.forks.count(),
    }


def role_context(*, user: Any) -> dict[str, Any]:
    """The role flags templates read from ``orchestrator.context_processors.loopgate``.

    A pushed fragment is rendered without a request, so no context processor
    runs: without these an admin would see no "Raise budget" form appear on an
    execution going over budget until a reload.
    """
    return {
        "user_role": roles.role_label(user),
        "user_is_admin": roles.is_admin(user),
        "user_can_decide": roles.can_decide(user),
        "user_can_operate": roles.can_operate(user),
    }


def diagram_context(*, execution: Execution) -> dict[str, Any]:
    from orchestrator import registry
    from orchestrator.errors import LoopgateError

    try:
        entry = registry.get_graph(execution.graph_name)
    except LoopgateError as exc:
        return {"execution": execution, "mermaid": "", "diagram_error": exc.message, "graph_nodes": []}
    now = states.execution_now(execution=execution)
    path = selectors.path_taken(execution=execution)
    return {
        "execution": execution,
        "mermaid": states.mermaid_with_highlight(entry.mermaid, now, visited=list(path.visits),
                                                 transitions=path.transitions),
        "now": now,
        "graph_nodes": entry.own_nodes,
        "node_visits": path.visits,
        "version_changed": bool(execution.graph_version and entry.version != execution.graph_version),
        "current_version": entry.version,
    }


def now_context(*, execution: Execution) -> dict[str, Any]:
    return {"execution": execution, "pending_spans": selectors.unstepped_spans(execution=execution)}


def render_step_push(*, execution: Execution, step: Step, user: Any) -> str:
    """What a watching browser gets for a new step: the row (appended) and the regions it changes."""
    ctx: dict[str, Any] = {"execution": execution, "step": step}
    ctx.update(role_context(user=user))
    ctx.update(header_context(execution=execution, user=user))
    ctx.update(diagram_context(execution=execution))
    ctx.update(now_context(execution=execution))
    return render_to_string("traces/partials/step_push.html", ctx)


def render_execution_push(*, execution: Execution, user: Any) -> str:
    """What a watching browser gets when the execution's status changes."""
    ctx: dict[str, Any] = {"execution": execution}
    ctx.update(role_context(user=user))
    ctx.update(header_context(execution=execution, user=user))
    ctx.update(diagram_context(execution=execution))
    ctx.update(now_context(execution=execution))
    return render_to_string("traces/partials/execution_push.html", ctx)


def render_list_row(*, execution: Execution) -> str:
    return render_to_string("traces/partials/execution_row.html", {"e": execution, "oob": True})
