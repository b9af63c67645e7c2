"""One registered graph: what was read from its module, or why it could not be."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from orchestrator import gates
from orchestrator.errors import GraphBroken
from orchestrator.registry.compiling import compile_graph
from orchestrator.registry.input_schema import input_errors

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

# Names appear in URLs (/graphs/<name>/start/) and in LangGraph thread metadata.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


class EntryError(Exception):
    """Why one entry cannot be loaded, in words meant for the person who wrote it."""


@dataclass(eq=False)
class GraphEntry:
    name: str
    spec: str
    version: str = ""
    description: str = ""
    error: str | None = None
    # Optional per-graph step limit: a module-level LOOPGATE_RECURSION_LIMIT next to the attribute.
    recursion_limit: int | None = None
    example_input: dict[str, Any] = field(default_factory=dict)
    source_graph: Any = field(default=None, repr=False)
    nodes: list[str] = field(default_factory=list)
    edges: list[tuple[str, str, bool]] = field(default_factory=list)
    mermaid: str = field(default="", repr=False)
    input_schema: dict[str, Any] = field(default_factory=dict, repr=False)
    builtin: bool = False
    # Nodes the graph's author names as human gates (LOOPGATE_GATES, or "gates" in langgraph.json).
    declared_gates: list[str] = field(default_factory=list)
    _compiled: Any = field(default=None, init=False, repr=False)

    @property
    def is_broken(self) -> bool:
        return self.error is not None

    @property
    def own_nodes(self) -> list[str]:
        """The graph's own nodes, without LangGraph's ``__start__`` / ``__end__``."""
        return [node for node in self.nodes if node not in ("__start__", "__end__")]

    @property
    def node_count(self) -> int:
        return len(self.own_nodes)

    @property
    def compiled(self) -> CompiledStateGraph:
        """The graph compiled with Loopgate's checkpointer and store, built on first use.

        Imported here, not at module level: the checkpointer and the store need the models,
        and the registry is loaded by system checks before they may be ready.
        """
        if self._compiled is None:
            self._raise_if_broken()
            from orchestrator.checkpointer import get_checkpointer
            from orchestrator.store import get_store

            # Two threads may both compile on first use; either result is
            # equivalent, so no lock is needed.
            self._compiled = self.compile(get_checkpointer(), store=get_store())
        return self._compiled

    def compile(self, checkpointer: Any, store: Any = None) -> CompiledStateGraph:
        """Compile with the given saver (and store), keeping the entry's interrupts and settings."""
        self._raise_if_broken()
        return compile_graph(self.source_graph, checkpointer, store)

    def gates(self, pregel: Any = None) -> dict[str, str]:
        """The graph's (or one of its subgraphs') human gates, each with why (see ``orchestrator.gates``)."""
        return gates.gate_reasons(pregel if pregel is not None else self.compiled, graph_name=self.name,
                                  declared=self.declared_gates)

    def validate_input(self, data: dict[str, Any]) -> None:
        """Reject keys the input schema does not have and values of the wrong JSON type.

        Deliberately permissive: missing keys are fine (LangGraph takes partial
        input), and a value whose schema names no plain JSON type is accepted.
        """
        errors = input_errors(self.input_schema, data)
        if errors:
            raise ValidationError(errors)

    def _raise_if_broken(self) -> None:
        if self.error is not None:
            raise GraphBroken(f"Graph {self.name!r} cannot be loaded: {self.error}", extra={"name": self.name})
