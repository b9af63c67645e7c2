"""Reading graph state back from the checkpointer: the state at any checkpoint
(subgraphs included), the branch an execution ran along, what is running now,
and two executions' states side by side.

The checkpointer is the source of truth; ``Step`` rows only label checkpoints
(step number, nodes). Values leave here JSON-safe (``to_jsonable``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from django.core.exceptions import ValidationError

from orchestrator.jsonable import to_jsonable
from orchestrator.models import Execution
from traces import diff as diffs
from traces.models import Step

BRANCH_LIMIT = 2000
INTERNAL_PREFIXES = ("__", "branch:")


def graph_for(execution: Execution) -> Any:
    from orchestrator import registry

    return registry.get_graph(execution.graph_name).compiled


def config_for(execution: Execution, checkpoint_id: str | None = None, checkpoint_ns: str = "") -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": execution.thread_id, "checkpoint_ns": checkpoint_ns}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def pregel_for_namespace(graph: Any, checkpoint_ns: str) -> Any:
    """The graph, or the subgraph a checkpoint namespace (``child:<task id>``) belongs to."""
    if not checkpoint_ns:
        return graph
    from langgraph._internal._config import recast_checkpoint_ns  # noqa: PLC2701 - LangGraph's own helper

    recast = recast_checkpoint_ns(checkpoint_ns)
    for _name, sub in graph.get_subgraphs(namespace=recast, recurse=True):
        return sub
    raise ValidationError({"checkpoint_ns": f"This graph has no subgraph at {recast!r}."})


def state_keys(pregel: Any) -> list[str]:
    """The keys of a graph's state, without LangGraph's own channels."""
    builder = getattr(pregel, "builder", None)
    channels = getattr(builder, "channels", None) or pregel.channels
    return [key for key in channels if not key.startswith(INTERNAL_PREFIXES)]


def node_names(pregel: Any) -> list[str]:
    return [name for name in pregel.nodes if not name.startswith("__")]


# --- the state at one checkpoint --------------------------------------------------------------


@dataclass
class SubgraphState:
    task: str
    checkpoint_id: str
    checkpoint_ns: str
    next: list[str]


@dataclass
class StateAt:
    checkpoint_id: str
    checkpoint_ns: str
    parent_checkpoint_id: str
    step: int | None
    source: str
    values: dict[str, Any]
    next: list[str]
    interrupts: list[dict[str, Any]]
    subgraphs: list[SubgraphState]
    created_at: str | None
    keys: list[str]
    nodes: list[str]
    recorded_step: Step | None = None

    @property
    def is_subgraph(self) -> bool:
        return bool(self.checkpoint_ns)


def state_at(*, execution: Execution, checkpoint_id: str | None = None, checkpoint_ns: str = "") -> StateAt:
    """The whole state at a checkpoint of the execution's thread (its head when none is named).

    Raises ``ValidationError`` when the thread has no such checkpoint.
    """
    graph = graph_for(execution)
    pregel = pregel_for_namespace(graph, checkpoint_ns)
    snapshot = graph.get_state(config_for(execution, checkpoint_id, checkpoint_ns), subgraphs=True)
    configurable = (snapshot.config or {}).get("configurable", {})
    # An unknown checkpoint comes back as an empty snapshot echoing the config, without metadata.
    if snapshot.metadata is None or not configurable.get("checkpoint_id") or (
        checkpoint_id and configurable["checkpoint_id"] != checkpoint_id
    ):
        raise ValidationError({"checkpoint": "This execution has no such checkpoint."})
    subgraphs = []
    interrupts = []
    for task in snapshot.tasks:
        for item in task.interrupts:
            interrupts.append({"node": task.name, "id": item.id, "value": to_jsonable(item.value)})
        sub = task.state
        if sub is not None and getattr(sub, "config", None):
            sub_conf = sub.config["configurable"]
            subgraphs.append(SubgraphState(task=task.name, checkpoint_id=sub_conf.get("checkpoint_id", ""),
                                           checkpoint_ns=sub_conf.get("checkpoint_ns", ""), next=list(sub.next)))
    parent = (snapshot.parent_config or {}).get("configurable", {})
    recorded = Step.objects.filter(execution=execution, checkpoint_id=configurable["checkpoint_id"]).first()
    return StateAt(
        checkpoint_id=configurable["checkpoint_id"],
        checkpoint_ns=configurable.get("checkpoint_ns", ""),
        parent_checkpoint_id=parent.get("checkpoint_id", ""),
        step=(snapshot.metadata or {}).get("step"),
        source=(snapshot.metadata or {}).get("source", ""),
        values=to_jsonable(snapshot.values) if isinstance(snapshot.values, dict) else {"value": to_jsonable(snapshot.values)},
        next=list(snapshot.next),
        interrupts=interrupts,
        subgraphs=subgraphs,
        created_at=snapshot.created_at,
        keys=state_keys(pregel),
        nodes=node_names(pregel),
        recorded_step=recorded,
    )


# --- what runs now --------------------------------------------------------------------------------------


@dataclass
class Now:
    nodes: list[str] = field(default_factory=list)  # mermaid ids: "node" or "sub:inner"
    state: str = ""  # "running", "waiting" or "failed"


def execution_now(*, execution: Execution) -> Now:
    """The node(s) to highlight: running or waiting ones from the head checkpoint, or the one that failed."""
    status = execution.status
    if status == Execution.Status.FAILED:
        node = (execution.error or {}).get("node")
        return Now(nodes=[node] if node else [], state="failed")
    if status not in (Execution.Status.RUNNING, Execution.Status.INTERRUPTED, Execution.Status.QUEUED):
        return Now()
    try:
        snapshot = graph_for(execution).get_state(config_for(execution), subgraphs=True)
    except Exception:  # noqa: BLE001 - a highlight is a courtesy; the page must render without it
        return Now()
    nodes: list[str] = []
    for task in snapshot.tasks:
        nodes.append(task.name)
        sub = task.state
        if sub is not None and getattr(sub, "next", None):
            nodes.extend(f"{task.name}:{inner}" for inner in sub.next)
    if not nodes:
        nodes = list(snapshot.next)
    return Now(nodes=nodes, state="waiting" if status == Execution.Status.INTERRUPTED else "running")


_HIGHLIGHT = {
    "running": "fill:#ddf0ff,stroke:#0b63ce,stroke-width:3px",
    "waiting": "fill:#fff5cc,stroke:#9a6700,stroke-width:3px",
    "failed": "fill:#ffebe9,stroke:#cf222e,stroke-width:3px",
}


VISITED = "fill:#eaf2fc,stroke:#5b8fd6,stroke-width:2px"


def _known_ids(mermaid: str, nodes: Any) -> list[str]:
    ids = [str(node).replace(":", "\\3a") for node in nodes]
    return [i for i in ids if f"\t{i}(" in mermaid or f"\t{i}([" in mermaid or f"{i} " in mermaid]


VISITED_EDGE = "stroke:#5b8fd6,stroke-width:3px"
# An edge line of LangGraph's mermaid: ``a --> b;``, ``a -.-> b;`` or a labelled ``a -. &nbsp;end&nbsp; .-> b;``.
_EDGE = re.compile(r"^(?P<indent>\s*)(?P<a>\S+) (?P<arrow>-->|==>|-\.->|-\. (?P<label>.*?) \.->) (?P<b>[^\s;]+);$")


def _with_count(match: re.Match[str], count: int) -> str:
    """The edge line with how often it was taken in its label (LangGraph's own label kept)."""
    times = f"×{count}"
    if match["label"] is not None:
        label = match["label"].replace("&nbsp;", " ").strip()
        arrow = f"-. &nbsp;{label} {times}&nbsp; .->"
    else:
        arrow = f"{match['arrow']}|{times}|"
    return f"{match['indent']}{match['a']} {arrow} {match['b']};"


def _path_edges(lines: list[str], transitions: dict[tuple[str, str], int]) -> list[int]:
    """Marks the edges the execution took (a count on each taken more than once); their link indexes."""
    taken: list[int] = []
    index = 0
    for i, line in enumerate(lines):
        match = _EDGE.match(line)
        if match is None:
            continue
        ends = tuple(end.replace("\\3a", ":") for end in (match["a"], match["b"]))
        count = transitions.get(ends, 0)  # type: ignore[call-overload]
        if count:
            taken.append(index)
            if count > 1:
                lines[i] = _with_count(match, count)
        index += 1
    return taken


def mermaid_with_highlight(mermaid: str, now: Now, visited: Any = (),
                           transitions: dict[tuple[str, str], int] | None = None) -> str:
    """The graph's mermaid text with the path the execution took (the nodes that ran, ``visited``, and
    the edges it went along, ``transitions``, counted when taken more than once, as on a loop) and the
    current node(s) styled, subgraph nodes included."""
    if not mermaid:
        return mermaid
    lines = mermaid.rstrip("\n").split("\n")
    styled = len(lines)
    edges = _path_edges(lines, transitions or {})
    if edges:
        lines.append(f"\tlinkStyle {','.join(map(str, edges))} {VISITED_EDGE}")
    ran = _known_ids(mermaid, visited)
    if ran:
        lines += [f"\tclassDef lg_visited {VISITED}", f"\tclass {','.join(ran)} lg_visited"]
    current = _known_ids(mermaid, now.nodes) if now.nodes and now.state in _HIGHLIGHT else []
    if current:
        lines += [f"\tclassDef lg_{now.state} {_HIGHLIGHT[now.state]}", f"\tclass {','.join(current)} lg_{now.state}"]
    return "\n".join(lines) + "\n" if len(lines) > styled else mermaid


# --- branches and comparisons ------------------------------------------------------------------------------------


@dataclass
class BranchPoint:
    checkpoint_id: str
    parent_id: str
    step: int | None
    source: str
    values: dict[str, Any]
    label: str = ""


def execution_branch(*, execution: Execution) -> list[BranchPoint]:
    """The root checkpoints the execution's head descends from, oldest first.

    A fork's thread is a copy of its parent's, later checkpoints of the parent
    included; walking parents from the head keeps only the fork's own line.
    """
    graph = graph_for(execution)
    points: dict[str, BranchPoint] = {}
    head = None
    for snapshot in graph.get_state_history(config_for(execution), limit=BRANCH_LIMIT):
        conf = snapshot.config["configurable"]
        parent = (snapshot.parent_config or {}).get("configurable", {})
        point = BranchPoint(
            checkpoint_id=conf["checkpoint_id"], parent_id=parent.get("checkpoint_id", ""),
            step=(snapshot.metadata or {}).get("step"), source=(snapshot.metadata or {}).get("source", ""),
            values=to_jsonable(snapshot.values) if isinstance(snapshot.values, dict) else {},
        )
        points[point.checkpoint_id] = point
        head = head or point  # the history comes newest first
    line: list[BranchPoint] = []
    seen: set[str] = set()
    while head is not None and head.checkpoint_id not in seen:
        seen.add(head.checkpoint_id)
        line.append(head)
        head = points.get(head.parent_id)
    line.reverse()
    labels = dict(Step.objects.filter(execution=execution).values_list("checkpoint_id", "nodes"))
    for point in line:
        nodes = labels.get(point.checkpoint_id)
        point.label = ", ".join(nodes) if nodes else {"input": "input", "update": "edit", "fork": "replay"}.get(
            point.source, point.source
        )
    return line


@dataclass
class CompareRow:
    index: int
    left: BranchPoint | None
    right: BranchPoint | None
    diff: list[dict[str, Any]]

    @property
    def same(self) -> bool:
        return self.left is not None and self.right is not None and not self.diff


@dataclass
class Comparison:
    shared: list[BranchPoint]
    rows: list[CompareRow]


def executions_compare(*, left: Execution, right: Execution) -> Comparison:
    """Two executions' states step by step, from where their lines part.

    The shared history (checkpoints both lines hold) is one block; after it the
    lines are compared point by point. An edit made on top of the last shared
    checkpoint (a fork) stands in for that checkpoint, so the first row shows
    the edit itself and later rows compare the same node runs.
    """
    a, b = execution_branch(execution=left), execution_branch(execution=right)
    shared_len = 0
    for x, y in zip(a, b):
        if x.checkpoint_id != y.checkpoint_id:
            break
        shared_len += 1
    shared = a[:shared_len]
    rest_a, rest_b = a[shared_len:], b[shared_len:]
    last_shared = shared[-1] if shared else None
    a_edit = bool(rest_a) and rest_a[0].source == "update"
    b_edit = bool(rest_b) and rest_b[0].source == "update"
    if last_shared is not None and a_edit != b_edit:
        if a_edit:
            rest_b = [last_shared, *rest_b]
        else:
            rest_a = [last_shared, *rest_a]
    rows = []
    for index, (x, y) in enumerate(zip_longest(rest_a, rest_b)):
        diff = diffs.state_diff(x.values, y.values) if x is not None and y is not None else []
        rows.append(CompareRow(index=index, left=x, right=y, diff=list(diff)))
    return Comparison(shared=shared, rows=rows)
