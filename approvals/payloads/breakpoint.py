"""A static breakpoint (``interrupt_before`` / ``interrupt_after``) or a held fork: no value
from the graph, so never recognised from one; the runner makes it. Approve continues, reject
cancels; nothing is sent to the graph (the value below is only recorded). Unanswered:
``{"type": "timeout"}`` and the execution is cancelled."""

from __future__ import annotations

from approvals.payloads.base import APPROVE, REJECT, Action
from approvals.payloads.plain import PlainFormat


class BreakpointFormat(PlainFormat):
    name = "breakpoint"

    def recognises(self, value: object) -> bool:
        return False


def breakpoint_actions(nodes: list[str], when: str) -> list[Action]:
    return [
        Action(
            name=node,
            args={},
            description=f"The graph stopped at a breakpoint {when} the node “{node}”. Approve to continue; "
            "reject to cancel the execution.",
            allowed_decisions=[APPROVE, REJECT],
            args_schema=None,
        )
        for node in nodes
    ]
