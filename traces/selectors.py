"""Reads of the trace: executions filtered, timeline pages, span trees, lineage, exports.

Permission checks go through ``orchestrator.selectors`` (every role may read
every execution); the functions here take an execution the caller may see.
"""

from __future__ import annotations

import collections
import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from orchestrator import accounting
from orchestrator import selectors as core
from orchestrator.models import Execution
from traces.models import Span, Step

TIMELINE_PAGE = 100
LINEAGE_LIMIT = 500


# --- the executions list ------------------------------------------------------------------------


@dataclass
class ExecutionFilters:
    graph: str = ""
    status: str = ""
    since: datetime.date | None = None
    until: datetime.date | None = None
    q: str = ""

    @property
    def active(self) -> bool:
        return bool(self.graph or self.status or self.since or self.until or self.q)


def execution_list_filtered(*, user: Any, filters: ExecutionFilters) -> QuerySet[Execution]:
    """The executions ``user`` may see, newest first, narrowed by the list page's filters."""
    qs = core.execution_list_for_user(user=user)
    if filters.graph:
        qs = qs.filter(graph_name=filters.graph)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.since:
        qs = qs.filter(created_at__gte=_day_start(filters.since))
    if filters.until:
        qs = qs.filter(created_at__lt=_day_start(filters.until + datetime.timedelta(days=1)))
    text = filters.q.strip()
    if text:
        # An id prefix, a graph, a version or who started it; one query on any backend.
        qs = qs.annotate(id_text=Cast("id", output_field=CharField())).filter(
            Q(id_text__istartswith=text)
            | Q(graph_name__icontains=text)
            | Q(graph_version__istartswith=text)
            | Q(created_by__username__icontains=text)
        )
    return qs


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()), timezone.get_current_timezone())


def execution_graph_names(*, user: Any) -> list[str]:
    """Graph names for the filter: every registered graph and every graph that ever ran."""
    from orchestrator import registry

    ran = core.execution_list_for_user(user=user).order_by().values_list("graph_name", flat=True).distinct()
    names = {entry.name for entry in registry.all_entries() if not entry.is_broken} | set(ran)
    return sorted(names)


# --- the timeline ----------------------------------------------------------------------------------


@dataclass
class TimelinePage:
    steps: list[Step]
    has_more: bool
    remaining: int
    last_id: int | None


def step_page(*, execution: Execution, after: int | None = None, node: str = "", limit: int = TIMELINE_PAGE) -> TimelinePage:
    """One page of the timeline, oldest first, after step row ``after`` (keyset on the id,
    the order steps were recorded in). ``update`` is left out: rows open lazily."""
    qs = Step.objects.filter(execution=execution).defer("update").order_by("id")
    if node:
        # The JSON text holds each name quoted; the same lookup on Postgres and SQLite.
        qs = qs.filter(nodes__icontains=f'"{node}"')
    if after is not None:
        qs = qs.filter(id__gt=after)
    rows = list(qs[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    remaining = qs.filter(id__gt=rows[-1].id).count() if has_more else 0
    return TimelinePage(steps=rows, has_more=has_more, remaining=remaining, last_id=rows[-1].id if rows else after)


def step_get(*, execution: Execution, step_id: int) -> Step:
    from django.http import Http404

    try:
        return Step.objects.get(execution=execution, id=step_id)
    except Step.DoesNotExist:
        raise Http404("No such step.") from None


@dataclass
class SpanRow:
    span: Span
    depth: int
    offset: float  # % of the step's window
    width: float

    @property
    def attributes(self) -> dict[str, Any]:
        return {k: v for k, v in (self.span.attributes or {}).items() if k != "otel_exported"}

    @property
    def cost(self) -> Decimal | None:
        if self.span.kind != Span.Kind.LLM:
            return None
        return accounting.cost_of(self.span.model, self.span.input_tokens, self.span.output_tokens)


def _step_span_qs(step: Step) -> QuerySet[Span]:
    """A step's spans found through its node spans: the tasks of the step, and every call
    made inside them. A call inside a subgraph carries the subgraph's own step number, so
    the step number alone would put it under some other step."""
    task_ids = Span.objects.filter(
        execution_id=step.execution_id, kind=Span.Kind.NODE, step=step.step
    ).exclude(task_id="").values("task_id")
    return Span.objects.filter(
        Q(task_id__in=task_ids) | Q(step=step.step, kind=Span.Kind.NODE), execution_id=step.execution_id
    ).order_by("started_at")


def step_spans(*, step: Step) -> list[SpanRow]:
    """The spans of one step as a waterfall: each node span, then the calls made inside it."""
    return _waterfall(list(_step_span_qs(step)), start=step.started_at, end=step.finished_at)


def _waterfall(spans: list[Span], *, start: datetime.datetime, end: datetime.datetime) -> list[SpanRow]:
    if not spans:
        return []
    start = min([start, *(s.started_at for s in spans)])
    end = max([end, *((s.ended_at or s.started_at) for s in spans)])
    window = max((end - start).total_seconds(), 1e-6)
    children: dict[UUID | None, list[Span]] = defaultdict(list)
    ids = {s.id for s in spans}
    for span in spans:
        children[span.parent_id if span.parent_id in ids else None].append(span)
    rows: list[SpanRow] = []

    def walk(parent: UUID | None, depth: int) -> None:
        for span in children.get(parent, []):
            offset = (span.started_at - start).total_seconds() / window * 100
            length = ((span.ended_at or end) - span.started_at).total_seconds() / window * 100
            rows.append(SpanRow(span=span, depth=depth, offset=round(min(offset, 99.5), 2),
                                width=round(max(0.5, min(length, 100 - offset)), 2)))
            walk(span.id, depth + 1)

    walk(None, 0)
    return rows


def unstepped_spans(*, execution: Execution) -> list[SpanRow]:
    """Spans after the last recorded step: a node running now, waiting at an interrupt, or the one that failed."""
    last = Step.objects.filter(execution=execution).order_by("-step").values_list("step", flat=True).first()
    qs = Span.objects.filter(execution=execution).order_by("started_at")
    if last is not None:
        # A call inside a subgraph node still running has no step yet (its node span sets it).
        qs = qs.filter(Q(step__gt=last) | Q(step__isnull=True))
    spans = list(qs[:200])
    if not spans:
        return []
    end = max((s.ended_at or s.started_at) for s in spans)
    return _waterfall(spans, start=spans[0].started_at, end=end)


# --- the header -------------------------------------------------------------------------------------


def execution_cost(*, execution: Execution) -> Decimal | None:
    """What the LLM calls cost at the configured prices (one rule everywhere: accounting's)."""
    return accounting.execution_cost(execution)


@dataclass
class PendingApproval:
    id: UUID
    node: str
    url: str
    created_at: datetime.datetime


def approval_url(approval_id: UUID) -> str:
    # The approval page belongs to the approvals app; until it exists, the plain path.
    try:
        return reverse("approvals:detail", args=[approval_id])
    except NoReverseMatch:
        return f"/approvals/{approval_id}/"


def execution_pending_approvals(*, execution: Execution) -> list[PendingApproval]:
    rows = execution.approvals.filter(status="pending").order_by("created_at").values_list("id", "node", "created_at")
    return [PendingApproval(id=i, node=node, url=approval_url(i), created_at=created) for i, node, created in rows]


@dataclass
class PathTaken:
    """The way an execution went through its graph: how many steps each node ran in, and how often
    each pair of nodes followed one another (``__start__`` first, ``__end__`` once it ended)."""

    visits: dict[str, int] = field(default_factory=dict)
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)


def _is_graph_node(name: str) -> bool:
    return not name.startswith(("edit", "replay"))  # a fork's first step is the edit it started from


def path_taken(*, execution: Execution) -> PathTaken:
    """One pass over the execution's own steps (not its subgraphs'), in step order."""
    visits: collections.Counter[str] = collections.Counter()
    transitions: collections.Counter[tuple[str, str]] = collections.Counter()
    previous: list[str] = []
    rows = (Step.objects.filter(execution=execution, checkpoint_ns="").order_by("step", "id")
            .values_list("nodes", flat=True))
    for nodes in rows.iterator():
        names = [str(name) for name in nodes or [] if _is_graph_node(str(name))]
        if not names:
            continue
        for name in names:
            if name != "__start__":
                visits[name] += 1
        for a in previous:
            for b in names:
                transitions[(a, b)] += 1
        previous = names
    if previous and execution.status == Execution.Status.SUCCEEDED:
        for a in previous:
            transitions[(a, "__end__")] += 1
    return PathTaken(visits=dict(visits), transitions=dict(transitions))


def fork_start(*, execution: Execution) -> Step | None:
    """A fork's first step, the edit (or replay) it started from; None for an execution that is not a fork."""
    if execution.parent_id is None:
        return None
    first = Step.objects.filter(execution=execution).order_by("id").first()
    label = (first.nodes or [""])[0] if first is not None else ""
    return first if label == "replay" or str(label).startswith("edit") else None


# --- lineage ---------------------------------------------------------------------------------------------


@dataclass
class LineageNode:
    execution: Execution
    children: list[LineageNode] = field(default_factory=list)


def execution_lineage(*, execution: Execution) -> LineageNode:
    """The tree of forks this execution belongs to: from its oldest ancestor, every fork of every fork."""
    root = execution
    seen = {root.id}
    while root.parent_id is not None and root.parent_id not in seen:
        parent = Execution.objects.filter(id=root.parent_id).first()
        if parent is None:
            break
        seen.add(parent.id)
        root = parent
    top = LineageNode(execution=root)
    level = [top]
    count = 1
    while level and count < LINEAGE_LIMIT:
        by_id = {node.execution.id: node for node in level}
        forks = Execution.objects.filter(parent_id__in=list(by_id)).select_related("created_by").order_by("created_at")
        level = []
        for fork in forks[: LINEAGE_LIMIT - count]:
            node = LineageNode(execution=fork)
            by_id[fork.parent_id].children.append(node)  # type: ignore[index]
            level.append(node)
            count += 1
    return top


def lineage_members(node: LineageNode) -> list[Execution]:
    out = [node.execution]
    for child in node.children:
        out.extend(lineage_members(child))
    return out


# --- export ------------------------------------------------------------------------------------------------


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _step_dict(s: Step) -> dict[str, Any]:
    return {
        "id": s.id, "step": s.step, "nodes": s.nodes, "checkpoint_id": s.checkpoint_id,
        "parent_checkpoint_id": s.parent_checkpoint_id, "checkpoint_ns": s.checkpoint_ns,
        "update": s.update, "diff": s.diff, "tokens": s.tokens, "bytes_written": s.bytes_written,
        "started_at": _iso(s.started_at), "finished_at": _iso(s.finished_at),
    }


def _span_dict(s: Span) -> dict[str, Any]:
    return {
        "id": str(s.id), "parent_id": str(s.parent_id) if s.parent_id else None, "kind": s.kind, "name": s.name,
        "status": s.status, "step": s.step, "task_id": s.task_id, "checkpoint_ns": s.checkpoint_ns,
        "model": s.model, "input": s.input, "output": s.output, "error": s.error,
        "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
        "attributes": {k: v for k, v in s.attributes.items() if k != "otel_exported"},
        "started_at": _iso(s.started_at), "ended_at": _iso(s.ended_at), "duration_ms": s.duration_ms,
    }


def execution_export_step(*, step: Step) -> dict[str, Any]:
    """One step with its spans, whole (the page truncates; this is the full value)."""
    return {**_step_dict(step), "spans": [_span_dict(s) for s in _step_span_qs(step)]}


def execution_export(*, execution: Execution) -> dict[str, Any]:
    """The whole trace as JSON-safe data: the execution, its steps and its spans."""
    steps = [_step_dict(s) for s in Step.objects.filter(execution=execution).order_by("id").iterator()]
    spans = [_span_dict(s) for s in Span.objects.filter(execution=execution).order_by("started_at").iterator()]
    cost = execution_cost(execution=execution)
    return {
        "format": "loopgate.trace/1",
        "execution": {
            "id": str(execution.id), "graph": execution.graph_name, "graph_version": execution.graph_version,
            "status": execution.status, "input": execution.input, "state": execution.state, "error": execution.error,
            "tokens_used": execution.tokens_used, "token_budget": execution.token_budget,
            "cost": str(cost) if cost is not None else None,
            "recursion_limit": execution.recursion_limit, "step_count": execution.step_count,
            "created_by": execution.created_by.get_username() if execution.created_by else None,
            "parent_id": str(execution.parent_id) if execution.parent_id else None,
            "forked_from_checkpoint": execution.forked_from_checkpoint or None,
            "created_at": _iso(execution.created_at), "started_at": _iso(execution.started_at),
            "finished_at": _iso(execution.finished_at),
        },
        "steps": steps,
        "spans": spans,
    }


def fork_hold(*, execution: Execution) -> Any:
    """The pending approval (the approvals app's row, through the reverse relation) that holds a fork at a
    gate it wrote past, or None."""
    return execution.approvals.filter(status="pending", format="breakpoint", payload__breakpoint="fork").first()
