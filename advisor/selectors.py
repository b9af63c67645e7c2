"""Reads of the advisor: an execution's findings, a graph's, and the graph's dismissals.

Computed on demand, from what the trace already recorded, with bounded queries: nothing is added to a
run's hot path (no hook in the runner, no task after it). The findings of one execution, or of a
graph's ``RECENT`` latest executions that have stopped (ended, or waiting for a person), cost at most
four queries, each capped per execution (``MAX_STEPS`` steps, ``MAX_SPANS`` spans per kind).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, F, JSONField, Value, When, Window
from django.db.models.functions import RowNumber
from django.urls import reverse

from advisor import rules
from advisor.models import Dismissal
from orchestrator import registry
from orchestrator.errors import GraphBroken, GraphNotFound
from orchestrator.models import Execution
from traces.models import Span, Step

RECENT = 5
MAX_STEPS = 400
MAX_SPANS = 400
STOPPED = (Execution.Status.SUCCEEDED, Execution.Status.FAILED, Execution.Status.INTERRUPTED,
           Execution.Status.CANCELLED, Execution.Status.BUDGET_EXCEEDED)
_parser_lines: dict[tuple[str, str, str], tuple[int, str] | None] = {}


@dataclass
class Advice:
    """What a page shows: the findings still standing, and those dismissed for the graph (with who and when)."""

    graph_name: str
    findings: list[rules.Finding] = field(default_factory=list)
    dismissed: list[tuple[rules.Finding | None, Dismissal]] = field(default_factory=list)
    executions_seen: int = 0


def _entry(graph_name: str) -> registry.GraphEntry | None:
    try:
        return registry.get_graph(graph_name)
    except (GraphNotFound, GraphBroken):
        return None


def _node_function(entry: registry.GraphEntry, node: str) -> Any:
    builder = getattr(entry.source_graph, "builder", entry.source_graph)
    runnable = getattr(getattr(builder, "nodes", {}).get(node), "runnable", None)
    return getattr(runnable, "func", None) or getattr(runnable, "afunc", None)


def _parser_line(entry: registry.GraphEntry | None, node: str) -> tuple[int, str] | None:
    """Where the node's code parses text; read once per graph version (the source cannot change under it)."""
    if entry is None:
        return None
    key = (entry.name, entry.version, node)
    if key not in _parser_lines:
        func = _node_function(entry, node)
        _parser_lines[key] = rules.node_parser_line(func) if func is not None else None
    return _parser_lines[key]


def _links(execution_id: Any, steps: list[dict[str, Any]]) -> rules.Links:
    page = reverse("traces:execution", args=[execution_id])
    by_number = {}
    for step in steps:
        if not step["checkpoint_ns"]:
            by_number.setdefault(step["step"], step["id"])

    def step_url(step_id: int) -> str:
        return reverse("traces:step", args=[execution_id, step_id])

    def span_url(span: dict[str, Any]) -> str:
        step_id = by_number.get(span.get("step"))
        # A span of a step not recorded yet (a node waiting at an interrupt) shows on the execution's page.
        return f"{step_url(step_id) if step_id else page}#span-{span['id']}"

    return rules.Links(step=step_url, span=span_url, execution=page)


def execution_findings(*, execution: Execution, entry: registry.GraphEntry | None = None) -> list[rules.Finding]:
    """Every finding in one execution's trace (dismissed or not). At most four bounded queries."""
    return _findings_of([execution], entry if entry is not None else _entry(execution.graph_name))[execution.id]


def _capped(queryset: Any, order: list[Any], limit: int) -> Any:
    """At most ``limit`` rows per execution (the first in ``order``), for any number of executions in one query."""
    rank = Window(RowNumber(), partition_by=[F("execution_id")], order_by=order)
    return queryset.annotate(rank_in_execution=rank).filter(rank_in_execution__lte=limit)


def _findings_of(executions: list[Execution], entry: registry.GraphEntry | None) -> dict[Any, list[rules.Finding]]:
    """The findings of each of these executions of one graph, read together: at most four queries for all
    of them, each capped per execution (``MAX_STEPS`` steps, ``MAX_SPANS`` spans per kind)."""
    edges = list(entry.edges) if entry is not None else []
    ids = [execution.id for execution in executions]
    steps: dict[Any, list[dict[str, Any]]] = {eid: [] for eid in ids}
    for step in (_capped(Step.objects.filter(execution_id__in=ids), [F("step").asc(), F("id").asc()], MAX_STEPS)
                 .order_by("execution_id", "step", "id")
                 .values("execution_id", "id", "step", "nodes", "update", "checkpoint_ns")):
        steps[step.pop("execution_id")].append(step)
    # The prompt itself is read only for a call the provider reported no tokens for (the rule estimates it).
    unreported = Case(When(input_tokens=0, then=F("input")), default=Value(None), output_field=JSONField())
    llm: dict[Any, list[dict[str, Any]]] = {eid: [] for eid in ids}
    for span in (_capped(Span.objects.filter(execution_id__in=ids, kind=Span.Kind.LLM), [F("started_at").asc()],
                         MAX_SPANS)
                 .order_by("execution_id", "started_at").annotate(prompt=unreported)
                 .values("execution_id", "id", "step", "model", "input_tokens", "prompt", "output", "parent__name")):
        span["node"], span["input"] = span.pop("parent__name") or "", span.pop("prompt")
        llm[span.pop("execution_id")].append(span)
    # Tool calls in a node that waited at an interrupt, and in its re-runs (same task); their node spans
    # are read only when there are some.
    waited = Span.objects.filter(execution_id__in=ids, kind=Span.Kind.NODE,
                                 status=Span.Status.INTERRUPTED).exclude(task_id="").values("task_id")
    tools: dict[Any, list[dict[str, Any]]] = {eid: [] for eid in ids}
    parents: set[Any] = set()
    for tool in (_capped(Span.objects.filter(execution_id__in=ids, kind=Span.Kind.TOOL, parent__task_id__in=waited,
                                             parent__execution_id=F("execution_id")),
                         [F("started_at").asc()], MAX_SPANS)
                 .order_by("execution_id", "started_at").values("execution_id", "id", "name", "parent_id", "input", "step")):
        parents.add(tool["parent_id"])
        tools[tool.pop("execution_id")].append(tool)
    node_spans: dict[Any, list[dict[str, Any]]] = {eid: [] for eid in ids}
    if parents:
        for span in (Span.objects.filter(id__in=parents).order_by("started_at")
                     .values("execution_id", "id", "name", "status", "task_id", "step", "started_at")):
            node_spans[span.pop("execution_id")].append(span)
    found: dict[Any, list[rules.Finding]] = {}
    for execution in executions:
        eid, links = str(execution.id), _links(execution.id, steps[execution.id])
        facts = {"id": eid, "status": execution.status, "error": execution.error,
                 "recursion_limit": execution.recursion_limit, "step_count": execution.step_count}
        found[execution.id] = [
            *rules.whole_state(steps[execution.id], links, eid),
            *rules.long_prompt(llm[execution.id], links, eid),
            *rules.unguarded_loop(facts, steps[execution.id], edges, links),
            *rules.free_text(llm[execution.id], edges, lambda node: _parser_line(entry, node), links, eid),
            *rules.side_effect_before_interrupt(node_spans[execution.id], tools[execution.id], links, eid),
        ]
    return found


def _split(graph_name: str, findings: list[rules.Finding], advice: Advice) -> Advice:
    dismissals = {d.key: d for d in Dismissal.objects.filter(graph_name=graph_name)}
    by_key = {f.key: f for f in findings}
    advice.findings = [f for f in findings if f.key not in dismissals]
    advice.dismissed = [(by_key.get(key), d) for key, d in dismissals.items()]
    return advice


def execution_advice(*, execution: Execution) -> Advice:
    """One execution's findings, less those dismissed for its graph."""
    findings = execution_findings(execution=execution)
    return _split(execution.graph_name, findings, Advice(graph_name=execution.graph_name, executions_seen=1))


def graph_advice(*, graph_name: str) -> Advice:
    """A graph's findings over its ``RECENT`` latest stopped executions, one per key (the newest
    execution's evidence), less those dismissed for it."""
    entry = _entry(graph_name)
    executions = list(Execution.objects.filter(graph_name=graph_name, status__in=STOPPED)
                      .order_by("-created_at")[:RECENT])
    findings: dict[str, rules.Finding] = {}
    by_execution = _findings_of(executions, entry) if executions else {}
    for execution in executions:  # newest first: a key's evidence is its newest execution's
        for finding in by_execution[execution.id]:
            findings.setdefault(finding.key, finding)
    return _split(graph_name, list(findings.values()), Advice(graph_name=graph_name,
                                                              executions_seen=len(executions)))


def graph_name_for_user(*, user: Any, name: str) -> str:
    """A registered graph's name, if the user may see it (every role may); else ``GraphNotFound``."""
    from orchestrator import selectors as core_selectors

    if name not in {entry.name for entry in core_selectors.graph_entries_for_user(user=user)}:
        raise GraphNotFound(f"There is no graph named {name!r}.", extra={"name": name})
    return name
