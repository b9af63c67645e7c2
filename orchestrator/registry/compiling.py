"""Compiling a registered graph with Loopgate's checkpointer and store, keeping what its author set."""

from __future__ import annotations

import copy
from typing import Any


def compile_graph(graph: Any, checkpointer: Any, store: Any = None) -> Any:
    """Compile ``graph`` (a StateGraph or a compiled graph) with ``checkpointer`` and ``store``.

    A compiled graph is compiled again from its builder with the same
    interrupt_before / interrupt_after, cache, name and config, so a
    static breakpoint its author set still stops the run (and becomes an
    approval). A compiled graph's own checkpointer is replaced by ours, and so
    is its store when ``store`` is given (as LangGraph's own server does: the
    memory must outlive the process); without one it keeps its own.
    """
    from langgraph.graph import StateGraph
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.pregel import Pregel

    if isinstance(graph, StateGraph):
        return _compile_builder(graph, checkpointer, store=store)
    if isinstance(graph, CompiledStateGraph):
        compiled = _compile_builder(
            graph.builder,
            checkpointer,
            interrupt_before=_as_interrupts(graph.interrupt_before_nodes),
            interrupt_after=_as_interrupts(graph.interrupt_after_nodes),
            store=store if store is not None else graph.store,
            cache=graph.cache,
            debug=graph.debug,
            name=graph.name,
            transformers=list(graph.stream_transformers) or None,
        )
        # Settings authors assign on the compiled object rather than pass to compile().
        compiled.step_timeout = graph.step_timeout
        compiled.retry_policy = graph.retry_policy
        compiled.cache_policy = graph.cache_policy
        if graph.config:
            compiled = compiled.with_config(graph.config)
        return compiled
    if isinstance(graph, Pregel):
        # No builder (e.g. the functional API's @entrypoint): copy with our saver.
        update = {"checkpointer": checkpointer}
        if store is not None:
            update["store"] = store
        return graph.copy(update=update)
    raise TypeError(f"{type(graph).__name__} is not a StateGraph or a compiled graph")


def _as_interrupts(value: Any) -> Any:
    return value if value == "*" else list(value or [])


def _compile_builder(builder: Any, checkpointer: Any, **kwargs: Any) -> Any:
    # StateGraph.compile() adds its default error handler node to the builder
    # itself and refuses to run twice once it is there; we compile every entry
    # at least twice (preview, then with the saver), so compile a shallow copy
    # without that generated node.
    from langgraph.graph import state as state_module

    generated = getattr(state_module, "_DEFAULT_ERROR_HANDLER_NODE", None)
    if generated is not None and generated in builder.nodes:
        builder = copy.copy(builder)
        builder.nodes = {key: node for key, node in builder.nodes.items() if key != generated}
    return builder.compile(checkpointer=checkpointer, **kwargs)
