"""Loading one entry of the graphs map into a ``GraphEntry``, or into the reason it cannot be.

An entry that cannot be loaded is kept with the reason, never raised: the web
process must come up with one bad graph file, and ``manage.py check``
(``orchestrator.checks``), the Graphs page and the server log report it.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from orchestrator.registry.compiling import compile_graph
from orchestrator.registry.entry import NAME_RE, EntryError, GraphEntry
from orchestrator.registry.input_schema import example_from_schema, input_json_schema
from orchestrator.registry.modules import ModuleCache, load_module, split_spec
from orchestrator.registry.versioning import graph_version

logger = logging.getLogger("orchestrator.registry")


def load_entry(name: str, raw: Any, *, base_dir: Path, builtin: bool, modules: ModuleCache) -> GraphEntry:
    """The entry ``name`` of the graphs map (``raw``: a spec string, or langgraph.json's
    ``{"path", "description", "gates"}``), loaded; broken ones carry ``error``."""
    description_override: str | None = None
    gates_override: Any = None
    if isinstance(raw, dict):
        spec = raw.get("path")
        description_override = raw.get("description") if isinstance(raw.get("description"), str) else None
        gates_override = raw.get("gates")
    else:
        spec = raw
    entry = GraphEntry(name=name, spec=str(spec), builtin=builtin)
    try:
        if not isinstance(spec, str) or not spec.strip():
            raise EntryError('expected "path/to/file.py:attr" or "package.module:attr"')
        if not NAME_RE.match(name):
            raise EntryError("a graph name may hold only letters, digits, '_', '.' and '-'")
        target, attr = split_spec(spec.strip())
        module, source = load_module(target, base_dir, modules)
        _fill_entry(entry, module, source, target, attr)
        if gates_override is not None:
            entry.declared_gates += _gate_list(gates_override, '"gates" in the graph\'s entry')
        unknown = sorted(set(entry.declared_gates) - set(entry.own_nodes))
        if unknown:
            raise EntryError(f"the gates {', '.join(unknown)} are not nodes of the graph; "
                             f"it has: {', '.join(entry.own_nodes)}")
        if description_override is not None:
            entry.description = description_override.strip()
    except EntryError as exc:
        entry.error = str(exc)
        logger.warning("Graph %r (%s) cannot be loaded: %s", name, entry.spec, entry.error)
    except (Exception, SystemExit) as exc:  # a graph module may raise anything on import; it must not take us down
        entry.error = f"{type(exc).__name__}: {exc}"
        logger.warning("Graph %r (%s) cannot be loaded: %s", name, entry.spec, entry.error, exc_info=True)
    if entry.error is not None:
        # A half-filled entry must not look usable to anyone who skips the error check.
        entry.source_graph = None
        entry.nodes, entry.edges, entry.mermaid, entry.input_schema = [], [], "", {}
    return entry


def _fill_entry(entry: GraphEntry, module: ModuleType, source: str, target: str, attr: str) -> None:
    from langgraph.graph import StateGraph
    from langgraph.pregel import Pregel

    if not hasattr(module, attr):
        raise EntryError(f"{target} has no attribute {attr!r}")
    graph = getattr(module, attr)
    if not isinstance(graph, (StateGraph, Pregel)):
        raise EntryError(f"{attr!r} is a {type(graph).__name__}, not a StateGraph or a compiled graph")
    entry.source_graph = graph
    entry.version = graph_version(module, source, entry.spec)
    entry.description = _prose(module.__doc__ or "")

    limit = getattr(module, "LOOPGATE_RECURSION_LIMIT", None)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise EntryError(f"LOOPGATE_RECURSION_LIMIT must be a whole number of 1 or more, not {limit!r}")
    entry.recursion_limit = limit
    entry.declared_gates = _gate_list(getattr(module, "LOOPGATE_GATES", []), "LOOPGATE_GATES")

    # Compiling without a saver validates the graph now (so `check` sees a bad
    # one) and gives the picture; runs use `compiled`, made with the checkpointer.
    preview = compile_graph(graph, None)
    drawing = preview.get_graph()
    entry.nodes = list(drawing.nodes)
    entry.edges = [(edge.source, edge.target, bool(edge.conditional)) for edge in drawing.edges]
    entry.mermaid = preview.get_graph(xray=True).draw_mermaid()
    entry.input_schema = input_json_schema(preview)

    example = getattr(module, "EXAMPLE_INPUT", None)
    if example is None:
        example = example_from_schema(entry.input_schema)
    elif not isinstance(example, dict):
        raise EntryError(f"EXAMPLE_INPUT must be a dict, not {type(example).__name__}")
    try:
        json.dumps(example)
    except (TypeError, ValueError) as exc:
        raise EntryError(f"EXAMPLE_INPUT must be JSON: {exc}") from None
    entry.example_input = copy.deepcopy(example)


def _gate_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise EntryError(f"{where} must be a list of node names, not {value!r}")
    return list(value)


def _prose(docstring: str) -> str:
    """A docstring as paragraphs: its hard line wraps are for the source, not the page."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(docstring).strip())
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs if paragraph.strip())
