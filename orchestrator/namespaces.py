"""LangGraph's checkpoint namespaces: ``"node:task-id|child:task-id"`` for a call inside a subgraph,
``""`` for the root graph. The one parser of them."""

from __future__ import annotations


def outer_part(checkpoint_ns: str | None) -> tuple[str, str]:
    """The outermost ``(node, task_id)`` of a namespace; ``("", "")`` for the root graph."""
    if not checkpoint_ns:
        return "", ""
    node, _, task_id = checkpoint_ns.split("|")[0].partition(":")
    return node, task_id


def outer_node(checkpoint_ns: str | None) -> str:
    """The node of the root graph that a (possibly nested) namespace runs under."""
    return outer_part(checkpoint_ns)[0]


def outer_task_id(checkpoint_ns: str | None) -> str:
    """The task of the root graph that a (possibly nested) namespace runs under."""
    return outer_part(checkpoint_ns)[1]
