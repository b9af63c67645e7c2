"""Which nodes of a graph are human gates: the nodes whose run waits for a person.

Time travel (a fork, a replay, a state update, a ``goto``) must never be a way
around a gate: writing a state update *as* a gate node makes LangGraph believe
the node ran, and the graph goes on past the question it would have asked. So
every such write asks this module first.

A node is a gate when any of these says so (the first that does is the reason
given to the user):

1. a static breakpoint: ``interrupt_before`` / ``interrupt_after`` names it (or ``"*"``);
2. the graph's settings: ``LOOPGATE_GATES = ["node", ...]`` beside the graph in
   its module, or ``"gates": [...]`` in its ``langgraph.json`` entry;
3. its code: the node's function (or a function of the user's own code it
   calls, or a tool of a ``ToolNode``, or a middleware hook) refers to
   LangGraph's ``interrupt``; a compiled subgraph used as a node is a gate when
   one of its own nodes is;
4. it interrupted at run time in some execution of the graph (the human gate
   registered in ``orchestrator.hooks`` remembers it);
5. doubt: a node whose code cannot be read is treated as a gate.
"""

from __future__ import annotations

import functools
import inspect
import sys
import sysconfig
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from orchestrator import hooks

_MAX_DEPTH = 4
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                                     sysconfig.get_paths()["platlib"]}
)


def _interrupt_objects() -> tuple[Any, ...]:
    from langgraph import errors
    from langgraph.types import interrupt

    found: list[Any] = [interrupt]
    for name in ("NodeInterrupt", "GraphInterrupt"):
        if hasattr(errors, name):
            found.append(getattr(errors, name))
    return tuple(found)


def gate_reasons(pregel: Any, *, graph_name: str = "", declared: Iterable[str] = ()) -> dict[str, str]:
    """Every gate node of ``pregel`` (a compiled graph or subgraph) with why it is one."""
    from langgraph.pregel import Pregel

    nodes = [name for name in pregel.nodes if not name.startswith("__")]
    reasons: dict[str, str] = {}
    before = getattr(pregel, "interrupt_before_nodes", None) or []
    after = getattr(pregel, "interrupt_after_nodes", None) or []
    declared = set(declared)
    seen = set(hooks.human_gate().nodes_seen(graph_name)) if graph_name else set()
    for name in nodes:
        if before == "*" or name in before:
            reasons[name] = "a breakpoint stops the graph before it"
        elif after == "*" or name in after:
            reasons[name] = "a breakpoint stops the graph after it"
        elif name in declared:
            reasons[name] = "the graph's settings name it a gate"
        else:
            bound = pregel.nodes[name].bound
            verdict = _runnable_interrupts(bound, 0, set())
            if verdict is True:
                reasons[name] = ("a node of its subgraph asks a person" if isinstance(bound, Pregel)
                                 else "its code asks a person (LangGraph's interrupt)")
            elif verdict is None:
                reasons[name] = "its code cannot be read, so Loopgate treats it as one"
            elif name in seen:
                reasons[name] = "it stopped for a person in an earlier run"
    return reasons


def _runnable_interrupts(runnable: Any, depth: int, visited: set[int]) -> bool | None:
    """True when the runnable may interrupt, False when it cannot, None when we cannot tell."""
    from langgraph.pregel import Pregel

    if id(runnable) in visited:
        return False
    visited.add(id(runnable))
    if isinstance(runnable, Pregel):  # a compiled subgraph used as a node
        return bool(gate_reasons(runnable)) or bool(
            getattr(runnable, "interrupt_before_nodes", None) or getattr(runnable, "interrupt_after_nodes", None)
        )
    parts = _parts(runnable)
    if parts is None:
        return None
    verdicts = [_callable_interrupts(part, depth, visited) if callable(part) and not _is_runnable(part)
                else _runnable_interrupts(part, depth, visited) for part in parts]
    if any(v is True for v in verdicts):
        return True
    if any(v is None for v in verdicts):
        return None
    return False


def _is_runnable(obj: Any) -> bool:
    from langchain_core.runnables import Runnable

    return isinstance(obj, Runnable)


def _parts(runnable: Any) -> list[Any] | None:
    """What a runnable runs: its functions, its steps, its tools; None when it is opaque."""
    from langchain_core.runnables import Runnable

    if not isinstance(runnable, Runnable):
        return [runnable] if callable(runnable) else None
    parts: list[Any] = []
    for attr in ("func", "afunc", "_wrap_tool_call", "_awrap_tool_call"):
        value = getattr(runnable, attr, None)
        if value is not None and callable(value):
            parts.append(value)
    for attr in ("steps", "first", "middle", "last", "bound"):
        value = getattr(runnable, attr, None)
        if isinstance(value, Runnable):
            parts.append(value)
        elif isinstance(value, (list, tuple)):
            parts.extend(v for v in value if isinstance(v, Runnable))
    steps = getattr(runnable, "steps__", None)
    if isinstance(steps, dict):
        parts.extend(steps.values())
    tools = getattr(runnable, "tools_by_name", None) or getattr(runnable, "_tools_by_name", None)
    if isinstance(tools, dict):
        for tool in tools.values():
            parts.extend(f for f in (getattr(tool, "func", None), getattr(tool, "coroutine", None)) if f)
    if parts:
        # A RunnableCallable's func is a bound method of the ToolNode itself: its
        # tools and wrappers above are what runs, so that library method is skipped.
        return [p for p in parts if not _is_library_method_of(p, runnable)]
    return [] if _is_inert(runnable) else None


def _is_library_method_of(part: Any, owner: Any) -> bool:
    return getattr(part, "__self__", None) is owner and _is_library(getattr(part, "__func__", part))


def _is_inert(runnable: Any) -> bool:
    """LangChain's own building blocks (models, prompts, parsers) never ask a person."""
    from langchain_core.language_models import BaseLanguageModel
    from langchain_core.output_parsers import BaseOutputParser
    from langchain_core.prompts import BasePromptTemplate

    return isinstance(runnable, (BaseLanguageModel, BasePromptTemplate, BaseOutputParser))


def _is_library(func: Any) -> bool:
    module = sys.modules.get(getattr(func, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if path is None:
        return getattr(func, "__module__", "") in sys.builtin_module_names
    resolved = str(Path(path).resolve())
    return resolved.startswith(_LIBRARY_DIRS)


def _unwrap(func: Any) -> Any:
    while True:
        if isinstance(func, functools.partial):
            func = func.func
        elif inspect.ismethod(func):
            func = func.__func__
        elif hasattr(func, "__wrapped__"):
            func = func.__wrapped__
        elif not inspect.isfunction(func) and callable(func) and inspect.isfunction(
            getattr(type(func), "__call__", None)
        ):
            func = type(func).__call__
        else:
            return func


def _owner_class(func: Any) -> type | None:
    """The class a function was defined in (``Class.method``), found in its module."""
    qualname = getattr(func, "__qualname__", "")
    if "." not in qualname or "<locals>" in qualname:
        return None
    owner: Any = getattr(func, "__globals__", {}).get(qualname.split(".")[0])
    for part in qualname.split(".")[1:-1]:
        owner = getattr(owner, part, None)
    return owner if isinstance(owner, type) else None


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _callable_interrupts(func: Any, depth: int, visited: set[int]) -> bool | None:
    func = _unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    targets = _interrupt_objects()
    namespace = dict(getattr(func, "__globals__", {}))
    try:
        namespace.update(inspect.getclosurevars(func).nonlocals)
    except (TypeError, ValueError):
        pass
    library = _is_library(func)
    owner = _owner_class(func)
    doubt = False
    for name in _code_names(code):
        obj = namespace.get(name)
        if any(obj is target for target in targets):
            return True
        method = getattr(owner, name, None) if owner is not None else None
        if inspect.isfunction(method) and id(method) not in visited and depth < _MAX_DEPTH:
            # ``self._ask(...)``: a method of the same class, followed even in library code
            # (LangChain's HumanInTheLoopMiddleware interrupts from a helper method).
            visited.add(id(method))
            if _callable_interrupts(method, depth + 1, visited) is True:
                return True
        if obj is None:
            if name == "interrupt":  # reached as an attribute (``types.interrupt``): assume the worst
                return True
            continue
        if library or depth >= _MAX_DEPTH or id(obj) in visited:
            continue
        if isinstance(obj, types.ModuleType):
            continue
        from langgraph.pregel import Pregel

        if isinstance(obj, Pregel) or _is_runnable(obj):
            verdict = _runnable_interrupts(obj, depth + 1, visited)
        elif inspect.isfunction(obj) or inspect.ismethod(obj):
            if _is_library(_unwrap(obj)):
                continue
            visited.add(id(obj))
            verdict = _callable_interrupts(obj, depth + 1, visited)
        else:
            continue
        if verdict is True:
            return True
        doubt = doubt or verdict is None
    return None if doubt else False


def infer_as_node(pregel: Any, checkpoint: dict[str, Any] | None) -> str | None:
    """The node LangGraph writes an update as when none is named (the last node that ran), or None.

    LangGraph keeps the rule in a private method; without it every unnamed
    write is treated as a write by an unknown node (a gate, in doubt).
    """
    infer = getattr(pregel, "_infer_as_node", None)
    if infer is None or checkpoint is None:
        return None
    try:
        return infer(checkpoint.get("versions_seen", {}))
    except Exception:  # noqa: BLE001 - doubt, handled by the caller as a gate
        return None


def breakpoint_hold(pregel: Any, snapshot: Any, *, graph: Any = None) -> tuple[list[str], str] | None:
    """The nodes a static breakpoint holds at this checkpoint, and ``"before"`` or ``"after"``; None if none.

    ``pregel`` is the graph (or subgraph) the snapshot belongs to; ``graph``, the
    root graph that reads checkpoints (default: ``pregel`` itself).
    """
    graph = graph if graph is not None else pregel
    before = getattr(pregel, "interrupt_before_nodes", None) or []
    after = getattr(pregel, "interrupt_after_nodes", None) or []
    nxt = list(snapshot.next)
    if before == "*" or any(n in before for n in nxt):
        return ([n for n in nxt if before == "*" or n in before], "before")
    if after and snapshot.parent_config:
        # The nodes that wrote this checkpoint are the ones its parent had next:
        # read from the checkpointer, not the trace, which a crash may have cut short.
        ran = list(graph.get_state(snapshot.parent_config).next)
        if after == "*" or any(n in after for n in ran):
            return ([n for n in ran if after == "*" or n in after], "after")
    return None


def hold_interrupt_id(checkpoint_id: str) -> str:
    """The interrupt id of an approval that holds an execution at a checkpoint (a breakpoint, a gated fork)."""
    return f"breakpoint:{checkpoint_id}"
