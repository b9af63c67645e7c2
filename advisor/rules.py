"""The advisor's rules: the seed document's mistakes, recognised in what an execution recorded.

Pure functions over rows already read (``advisor.selectors`` reads them, bounded) and, for the
rules that need the graph's shape or code, its registry entry. Nothing here touches the database,
so a rule costs nothing on a run's hot path: findings are computed on demand, when a page or the
API asks for them.

Each rule returns :class:`Finding` objects keyed ``<kind>:<subject>`` (``whole_state:reports``):
the key is what a dismissal names, the same for every execution of the graph. The rules, and why
each is sound:

- ``whole_state`` — a channel rewritten whole at every step. The recorder keeps each node's update
  as it wrote it (``Step.update``). A channel with a reducer gets only the new items; a plain channel
  that a node keeps as a history gets the whole history again, so each write repeats the previous
  write in full and adds to it (a list whose head is the last write, a string that starts with it,
  a dict that contains it). Flagged at ``MIN_WRITES`` writes or more that all repeat the one before
  and grew to at least ``GROWTH`` times the first.
- ``long_prompt`` — an LLM call whose prompt is over ``PROMPT_TOKENS`` tokens, counted as the budget
  counts it: the provider-reported input tokens the budget charged, or, when the provider reported
  none, the budget guard's own estimate (``orchestrator.budgets.guard.estimate_tokens``) of the
  recorded messages.
- ``unguarded_loop`` — an execution stopped by LangGraph's recursion limit (``GraphRecursionError``)
  while its graph has a cycle: whatever guard the loop has did not stop it. The cycle is taken from
  the graph's edges (the nodes that ran most, in one strongly connected component), else from the
  nodes the trace shows repeating.
- ``free_text`` — an LLM call answered in free text (no tool calls) and the node that made it, or a
  node right after it, parses text with ``json.loads`` / ``re.search`` / ``re.match`` /
  ``re.findall`` / ``ast.literal_eval``, seen in the node's source (``inspect``). A next node that
  calls a model itself is taken to parse its own model's answer, so it is not blamed on this call.
  Chat models offer ``with_structured_output`` for exactly this.
- ``side_effect_before_interrupt`` — a node whose recorded run made a tool call and then stopped
  at ``interrupt()``. LangGraph resumes a node from its top, so the call is made again: the finding
  counts the calls the node's re-runs made too. Every tool counts (a recorded call cannot say whether
  it writes); one that only reads is still paid for twice.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.budgets.guard import MESSAGE_OVERHEAD, estimate_tokens

MIN_WRITES = 3
GROWTH = 2.0
PROMPT_TOKENS = 2_000
KINDS = ("whole_state", "long_prompt", "unguarded_loop", "free_text", "side_effect_before_interrupt")
PARSERS = re.compile(r"\b(json\.loads|re\.search|re\.match|re\.fullmatch|re\.findall|ast\.literal_eval)\s*\(")


@dataclass
class Point:
    """One step of a channel's growth: the bytes one write stored, and where to see it."""

    step: int
    bytes: int
    href: str


@dataclass
class Finding:
    kind: str
    subject: str
    title: str
    evidence: str
    fix: str
    href: str
    link_label: str
    execution_id: str
    growth: list[Point] = field(default_factory=list)
    source_line: str = ""  # a line of the graph's code, shown as text

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"


@dataclass
class Links:
    """Where a finding points: a step's page, or a span on it (``#span-<id>``)."""

    step: Callable[[int], str]
    span: Callable[[dict[str, Any]], str]
    execution: str


def _size(value: Any) -> int:
    """Bytes as the recorder counts them (``traces.recorder._size``): compact JSON, UTF-8."""
    return len(json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False).encode())


def _repeats(prev: Any, cur: Any) -> bool:
    """``cur`` holds all of ``prev`` and more: the node wrote the history again, not just what it adds."""
    if isinstance(prev, list) and isinstance(cur, list):
        return len(cur) > len(prev) and cur[: len(prev)] == prev
    if isinstance(prev, str) and isinstance(cur, str):
        return len(cur) > len(prev) and cur.startswith(prev)
    if isinstance(prev, dict) and isinstance(cur, dict):
        return len(cur) > len(prev) and all(k in cur and cur[k] == v for k, v in prev.items())
    return False


def _bytes(n: int) -> str:
    return f"{n:,} B" if n < 10_000 else f"{n / 1024:,.1f} KiB"


# --- whole_state ------------------------------------------------------------------------------------


def whole_state(steps: list[dict[str, Any]], links: Links, execution_id: str) -> list[Finding]:
    """``steps``: ``{"id", "step", "update"}`` in order."""
    writes: dict[str, list[tuple[dict[str, Any], str, Any]]] = defaultdict(list)
    for step in steps:
        for node, update in (step["update"] or {}).items():
            if isinstance(update, dict):
                for channel, value in update.items():
                    if isinstance(value, (list, str, dict)):
                        writes[channel].append((step, node.split("#")[0], value))
    findings = []
    for channel, series in writes.items():
        if len(series) < MIN_WRITES:
            continue
        values = [value for _, _, value in series]
        if not all(_repeats(a, b) for a, b in zip(values, values[1:])):
            continue
        sizes = [_size(value) for value in values]
        if sizes[-1] < GROWTH * max(sizes[0], 1):
            continue
        picks = sorted({0, len(series) // 3, 2 * len(series) // 3, len(series) - 1})
        growth = [Point(step=series[i][0]["step"], bytes=sizes[i], href=links.step(series[i][0]["id"])) for i in picks]
        nodes = sorted({node for _, node, _ in series})
        findings.append(Finding(
            kind="whole_state", subject=channel,
            title=f"The state channel “{channel}” is rewritten whole at every step",
            evidence=(f"{_join(nodes)} wrote “{channel}” {len(series)} times, each time repeating everything "
                      f"written before: {_bytes(sizes[0])} at step {series[0][0]['step']}, "
                      f"{_bytes(sizes[-1])} at step {series[-1][0]['step']}. The bytes stored per step grow "
                      f"with the history, in every checkpoint."),
            fix=(f"Give “{channel}” a reducer — Annotated[list, operator.add], or add_messages for messages — "
                 f"and return only the new items (e.g. {{\"{channel}\": [new_item]}}). Each step then stores "
                 f"what it adds."),
            href=growth[-1].href, link_label=f"step {series[-1][0]['step']}", execution_id=execution_id,
            growth=growth,
        ))
    return findings


# --- long_prompt ------------------------------------------------------------------------------------


def prompt_tokens(span: dict[str, Any]) -> int:
    """The prompt's tokens as the budget counts them (see the module docstring)."""
    if span["input_tokens"]:
        return int(span["input_tokens"])
    messages = span.get("input") or []
    if isinstance(messages, list):
        return sum(MESSAGE_OVERHEAD + estimate_tokens(m.get("content") if isinstance(m, dict) else m)
                   for m in messages)
    return estimate_tokens(messages)


def long_prompt(llm_spans: list[dict[str, Any]], links: Links, execution_id: str) -> list[Finding]:
    """``llm_spans``: ``{"id", "step", "node", "model", "input_tokens", "input"}``."""
    worst: dict[str, tuple[int, dict[str, Any], int]] = {}
    for span in llm_spans:
        tokens = prompt_tokens(span)
        if tokens <= PROMPT_TOKENS:
            continue
        node = span["node"] or span["model"]
        seen = worst.get(node)
        count = (seen[2] if seen else 0) + 1
        if seen is None or tokens > seen[0]:
            worst[node] = (tokens, span, count)
        else:
            worst[node] = (seen[0], seen[1], count)
    return [
        Finding(
            kind="long_prompt", subject=node,
            title=f"“{node}” sends a prompt of {tokens:,} tokens",
            evidence=(_calls(count, span, tokens) + f" A prompt over {PROMPT_TOKENS:,} tokens is likely asking "
                      f"one node to do too much."),
            fix=("Split the node: give each part its own short prompt and pass results on in the state; keep "
                 "reference text out of the prompt and fetch only what the step needs."),
            href=links.span(span), link_label="the LLM call", execution_id=execution_id,
        )
        for node, (tokens, span, count) in worst.items()
    ]


def _calls(count: int, span: dict[str, Any], tokens: int) -> str:
    model = span["model"] or "the model"
    if count == 1:
        return f"Its call to {model} at step {span['step']} had a {tokens:,}-token prompt, as the budget counts it."
    return (f"{count} of its calls to {model} had prompts over {PROMPT_TOKENS:,} tokens, as the budget counts "
            f"them; the largest, at step {span['step']}, had {tokens:,} tokens.")


# --- unguarded_loop ---------------------------------------------------------------------------------


def _cycles(edges: Iterable[tuple[str, str, bool]]) -> list[set[str]]:
    """The graph's cycles: strongly connected components with more than one node, or a self-loop."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target, _ in edges:
        graph[source].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; graphs are small
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(component)

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def unguarded_loop(execution: dict[str, Any], steps: list[dict[str, Any]], edges: list[tuple[str, str, bool]],
                   links: Links) -> list[Finding]:
    """``execution``: ``{"id", "status", "error", "recursion_limit", "step_count"}``."""
    error = execution.get("error") or {}
    if execution["status"] != "failed" or error.get("type") != "GraphRecursionError":
        return []
    runs = Counter(node for step in steps for node in step["nodes"] if node != "__start__")
    cycles = _cycles(edges)
    if cycles:
        loop = max(cycles, key=lambda c: sum(runs[n] for n in c))
    else:  # the graph could not be loaded: the nodes the trace shows repeating
        loop = {node for node, n in runs.items() if n > 1}
    if not loop:
        return []
    names = sorted(loop, key=lambda n: (-runs[n], n))
    last = steps[-1] if steps else None
    ran = ", ".join(f"{n} ×{runs[n]}" for n in names if runs[n])
    return [Finding(
        kind="unguarded_loop", subject="→".join(sorted(loop)),
        title=f"A loop through {_join(names)} ran until the step limit stopped it",
        evidence=(f"The execution failed with GraphRecursionError after {execution['step_count']} steps "
                  f"(its limit: {execution['recursion_limit'] or 'the default'}). In the trace: {ran or 'no steps'}."
                  f" No condition in the loop ended it."),
        fix=("Add a max_iterations-style guard: count the rounds in the state (iterations: int), and route to "
             "END — or to a node that reports the failure — once the count reaches a limit you choose."),
        href=links.step(last["id"]) if last else links.execution,
        link_label=f"step {last['step']}" if last else "the execution", execution_id=str(execution["id"]),
    )]


# --- free_text --------------------------------------------------------------------------------------


def node_parser_line(func: Any) -> tuple[int, str] | None:
    """The first line of a node's source that parses text (``PARSERS``), with its line number."""
    try:
        lines, start = inspect.getsourcelines(inspect.unwrap(func))
    except (OSError, TypeError):
        return None
    source = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            text = ast.get_source_segment(source, node.func) or ""
            if PARSERS.match(text + "("):
                line = source.splitlines()[node.lineno - 1].strip()
                return start + node.lineno - 1, line
    return None


def free_text(llm_spans: list[dict[str, Any]], edges: list[tuple[str, str, bool]],
              parser_line: Callable[[str], tuple[int, str] | None], links: Links,
              execution_id: str) -> list[Finding]:
    """``parser_line(node)``: where that node's code parses text, if it does (``node_parser_line``)."""
    after: dict[str, set[str]] = defaultdict(set)
    for source, target, _ in edges:
        after[source].add(target)
    callers = {span["node"] for span in llm_spans}
    findings: dict[str, Finding] = {}
    for span in llm_spans:
        output = span.get("output")
        if not span["node"] or not isinstance(output, dict) or output.get("tool_calls"):
            continue  # a tool call (or function-calling structured output) is already structured
        # A next node that calls a model itself is taken to parse its own model's answer, not this one.
        readers = [span["node"], *sorted(after.get(span["node"], set()) - callers)]
        for reader in readers:
            parsed = parser_line(reader)
            key = f"{span['node']}→{reader}"
            if parsed is None or key in findings:
                continue
            lineno, line = parsed
            same = reader == span["node"]
            where = "the same node" if same else f"the next node, “{reader}”,"
            findings[key] = Finding(
                kind="free_text", subject=key,
                title=(f"“{reader}” parses its model's free-text answer" if same
                       else f"“{reader}” parses the free-text answer of “{span['node']}”"),
                evidence=(f"The LLM call in “{span['node']}” at step {span['step']} answered in plain text, and "
                          f"{where} picks it apart with code (line {lineno}). A change of wording breaks that "
                          f"transition."),
                fix=("Ask for structured output — model.with_structured_output(Schema), or a tool the model "
                     "must call — and read the fields instead of parsing text."),
                href=links.span(span), link_label="the LLM call", execution_id=execution_id, source_line=line,
            )
    return list(findings.values())


# --- side_effect_before_interrupt ---------------------------------------------------------------------


def side_effect_before_interrupt(node_spans: list[dict[str, Any]], tool_spans: list[dict[str, Any]],
                                 links: Links, execution_id: str) -> list[Finding]:
    """``node_spans``: ``{"id", "name", "status", "task_id", "step", "started_at"}`` in order;
    ``tool_spans``: ``{"id", "name", "parent_id", "input", "step"}``."""
    tools_of: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for tool in tool_spans:
        tools_of[tool["parent_id"]].append(tool)
    findings: dict[str, Finding] = {}
    for node in node_spans:
        calls = tools_of.get(node["id"], [])
        if node["status"] != "interrupted" or not calls or node["name"] in findings:
            continue
        reruns = [n for n in node_spans if n["name"] == node["name"] and n["task_id"] == node["task_id"]
                  and n["started_at"] > node["started_at"]]
        again = [t for n in reruns for t in tools_of.get(n["id"], []) if t["name"] in {c["name"] for c in calls}]
        tool = calls[0]
        names = _join(sorted({c["name"] for c in calls}))
        evidence = (f"At step {node['step']}, “{node['name']}” called {names} and then stopped at interrupt(). "
                    f"On resume LangGraph runs the node again from its top, ")
        evidence += (f"and it did: {names} ran {len(calls) + len(again)} times for one decision."
                     if again else "so the call will be made again.")
        findings[node["name"]] = Finding(
            kind="side_effect_before_interrupt", subject=node["name"],
            title=f"“{node['name']}” calls {names} before it asks for approval",
            evidence=evidence,
            fix=("Call interrupt() first and act after the answer, or split the node: one node asks, the next "
                 "one acts."),
            href=links.span(tool), link_label=f"the {tool['name']} call", execution_id=execution_id,
        )
    return list(findings.values())


def _join(names: list[str]) -> str:
    quoted = [f"“{n}”" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
