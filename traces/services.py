"""Time travel: fork an execution at any checkpoint, with an edited state or unchanged (replay).

A fork is a new execution on a new thread. Its thread is a copy of the
parent's (``copy_thread``), then one checkpoint is written on top of the chosen
one: the edit (``update_state``, as a node of the user's choice) or, for a
replay, a copy of it (``as_node="__copy__"``). That checkpoint is the newest
of the thread, so the runner resumes from it like from any crash.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from orchestrator import gates, hooks, registry, roles, services
from orchestrator.audit import audit_record
from orchestrator.errors import PermissionDenied
from orchestrator.jsonable import to_jsonable
from orchestrator.models import AuditEntry, CheckpointWrite, Execution
from orchestrator.namespaces import outer_node, outer_task_id
from traces import diff as diffs
from traces import state as states
from traces.models import Step

COPY = "__copy__"
INTERRUPT_CHANNEL = "__interrupt__"  # LangGraph's pending-write channel of an interrupt (private in langgraph 1.x)


def execution_fork(
    *,
    execution_id: UUID,
    user: User | None,
    checkpoint_id: str,
    checkpoint_ns: str = "",
    values: dict[str, Any] | None = None,
    as_node: str = "",
    decide: bool = False,
) -> Execution:
    """Start a new execution from a checkpoint of ``execution_id``, with ``values`` edited in.

    ``values`` is the state as the user edited it (the whole state or some of
    its keys); only the keys whose value changed are written, as an update made
    by ``as_node`` (LangGraph's default: the last node that ran). Keys with a
    reducer take the edited value as it stands. With no change at all, or no
    ``values``, the fork is a replay: the checkpoint is copied unchanged.

    The fork is a new execution under the graph's budget rules, as a start is:
    it keeps the parent's budget where the user could start with it (an admin's
    raise above the graph's budget carries over to admins' forks only; others
    get the graph's budget).

    Time travel never skips a person (``orchestrator.gates``): an edit written as a
    gate node, or a fork from a checkpoint a breakpoint holds, would go on past a
    question nobody answered. By default such a fork waits at its first checkpoint
    for a reviewer (an approval in the fork). With ``decide``, a user who may decide
    the parent's approvals makes the fork their decision instead: the parent's
    approvals at that gate are settled (``forked``, audited) and the parent cancelled,
    so the gated action runs once, in the fork.

    Raises ``PermissionDenied`` for users who may not operate (or, with ``decide``
    past a gate, may not decide), ``ValidationError``
    naming the field for a checkpoint that is not in the execution's thread, a
    key the state does not have, a value of the wrong type, or an unknown node,
    and ``DailyTokenLimitReached`` when the graph's daily token limit is used up.
    Effects: the execution row, the copied thread, the new head checkpoint and
    a first ``Step`` (the edit) in one transaction; after commit the execution
    is queued for a worker.
    """
    if user is not None and not roles.can_operate(user):
        raise PermissionDenied("Only operators and admins may fork or replay executions.")
    parent = Execution.objects.get(id=execution_id)
    entry = registry.get_graph(parent.graph_name)  # raises GraphNotFound / GraphBroken
    graph = entry.compiled
    before = states.state_at(execution=parent, checkpoint_id=checkpoint_id, checkpoint_ns=checkpoint_ns)
    pregel = states.pregel_for_namespace(graph, checkpoint_ns)
    if as_node and as_node not in states.node_names(pregel):
        known = ", ".join(states.node_names(pregel))
        raise ValidationError({"as_node": f"{as_node!r} is not a node of this graph; it has: {known}."})
    update = None if values is None else edit_to_update(pregel, before.values, values)
    replay = not update
    crossing = gate_crossed(entry, graph, pregel, parent, checkpoint_id=checkpoint_id, checkpoint_ns=checkpoint_ns,
                            as_node=None if replay else (as_node or None))
    if crossing is not None and decide and user is not None and not roles.can_decide(user):
        raise PermissionDenied(
            f"Only reviewers and admins may decide past “{crossing[0]}”. Fork without deciding, and the fork "
            "waits for a reviewer there."
        )

    with transaction.atomic():
        fork = services.execution_create_fork(parent=parent, user=user, graph_version=entry.version,
                                              checkpoint_id=checkpoint_id)
        # 1. The parent's whole thread, every namespace: subgraph checkpoints and
        #    pending writes (an interrupt waiting) come along.
        graph.checkpointer.copy_thread(parent.thread_id, fork.thread_id)
        # 2. The new head: the edit, or a copy of the checkpoint (a replay).
        at = states.config_for(fork, checkpoint_id, checkpoint_ns)
        try:
            if replay:
                head = graph.update_state(at, None, as_node=COPY)
            else:
                head = graph.update_state(at, update, as_node=as_node or None)
        except (ValueError, TypeError, KeyError) as exc:  # LangGraph's InvalidUpdateError is a ValueError
            raise ValidationError({"state": f"LangGraph refused the edit: {exc}"}) from None
        if checkpoint_ns:
            _drop_stale_interrupts(fork, checkpoint_ns)
        # 3. The edit as the first row of the fork's timeline.
        after = states.state_at(execution=fork, checkpoint_id=head["configurable"]["checkpoint_id"],
                                checkpoint_ns=checkpoint_ns)
        now = timezone.now()
        label = "replay" if replay else "edit" + (f" as {as_node}" if as_node else "")
        Step.objects.create(
            execution=fork,
            step=after.step if isinstance(after.step, int) else (before.step or 0) + 1,
            nodes=[label],
            checkpoint_id=after.checkpoint_id,
            parent_checkpoint_id=after.parent_checkpoint_id,
            checkpoint_ns=checkpoint_ns,
            update={label: to_jsonable(update)} if update else {},
            diff=diffs.state_diff(before.values, after.values),
            started_at=now,
            finished_at=now,
        )
        Execution.objects.filter(id=fork.id).update(step_count=1)
        if crossing is not None:
            _guard_gate(fork, parent, graph, crossing, update=update, user=user, decide=decide,
                        checkpoint_ns=checkpoint_ns)
    fork.refresh_from_db()
    return fork


def gate_crossed(entry: Any, graph: Any, pregel: Any, parent: Execution, *, checkpoint_id: str,
                 checkpoint_ns: str, as_node: str | None) -> tuple[str, str] | None:
    """The gate a write at this checkpoint would go past, and why it is one; None when it goes past none.

    ``as_node`` is the node an edit is written as (None: LangGraph's default, the
    last node that ran; for a replay pass None too, as nothing is written as a node).
    """
    config = states.config_for(parent, checkpoint_id, checkpoint_ns)
    snapshot = graph.get_state(config)
    held = gates.breakpoint_hold(pregel, snapshot, graph=graph)
    if held is not None:
        return ", ".join(held[0]), f"a breakpoint stops the graph {held[1]} it"
    if as_node is None and snapshot.metadata is not None:
        saved = graph.checkpointer.get_tuple(config)
        as_node = gates.infer_as_node(pregel, saved.checkpoint if saved else None)
    if as_node is None:
        return None  # LangGraph refuses an ambiguous update itself; a replay writes as no node
    reasons = entry.gates(pregel)
    return (as_node, reasons[as_node]) if as_node in reasons else None


def _guard_gate(fork: Execution, parent: Execution, graph: Any, crossing: tuple[str, str], *,
                update: dict[str, Any] | None, user: User | None, decide: bool, checkpoint_ns: str) -> None:
    """Inside the fork's transaction: hold the fork at its gate, or record the user's decision."""
    gate, reason = crossing
    head = graph.get_state(states.config_for(fork))
    if not head.next:
        return  # the write ends the graph: nothing would run past the gate
    # A gate inside a subgraph waits, in the parent, under the node that runs the subgraph.
    outer = outer_node(checkpoint_ns) or gate
    human_gate = hooks.human_gate()
    if decide and user is not None:
        settled = human_gate.settle_by_fork(parent_id=parent.id, fork_id=fork.id, gate=outer, user=user,
                                            detail={"as_node": gate, "update": to_jsonable(update)})
        if not settled:
            audit_record(kind=AuditEntry.Kind.DECISION, actor=user, execution_id=fork.id,
                         graph_name=fork.graph_name, action=gate, outcome="forked",
                         detail={"parent": str(parent.id), "gate": gate, "reason": reason,
                                 "update": to_jsonable(update)})
        return
    human_gate.hold_fork(fork=fork, parent=parent, checkpoint_id=head.config["configurable"]["checkpoint_id"],
                         gate=outer, reason=reason, values=update, user=user)


def _drop_stale_interrupts(fork: Execution, checkpoint_ns: str) -> None:
    """Forget the copied interrupt of the task that runs the edited subgraph.

    The parent's root checkpoint still holds the interrupt the subgraph raised
    before the edit; kept, the fork would first ask that stale question again.
    Dropped, the task runs again, the subgraph resumes from the edited
    checkpoint and asks anew with the edited state. (LangGraph's API has no
    call for this, so the copied pending-write rows are deleted here.)
    """
    task_id = outer_task_id(checkpoint_ns)
    if task_id:
        CheckpointWrite.objects.filter(thread_id=fork.thread_id, checkpoint_ns="", task_id=task_id,
                                       channel=INTERRUPT_CHANNEL).delete()


def execution_replay(*, execution_id: UUID, user: User | None, checkpoint_id: str, checkpoint_ns: str = "") -> Execution:
    """Run again from a checkpoint, unchanged, as a new execution (a fork without an edit)."""
    return execution_fork(execution_id=execution_id, user=user, checkpoint_id=checkpoint_id,
                          checkpoint_ns=checkpoint_ns, values=None)


# --- turning an edited state into an update ---------------------------------------------------------


def edit_to_update(pregel: Any, current: dict[str, Any], edited: Any) -> dict[str, Any]:
    """The update that takes ``current`` to ``edited``: the changed keys only, checked and typed.

    Raises ``ValidationError`` keyed by state key (or ``state`` for the whole).
    """
    if not isinstance(edited, dict):
        raise ValidationError({"state": "The state must be a JSON object ({...})."})
    keys = states.state_keys(pregel)
    errors: dict[str, str] = {}
    for key in edited:
        if key not in keys:
            errors[key] = f"{key!r} is not a key of this graph's state; it has: {', '.join(keys)}."
    if errors:
        raise ValidationError(errors)
    update: dict[str, Any] = {}
    for key, value in edited.items():
        if key in current and to_jsonable(current[key]) == value:
            continue
        problem = _type_problem(pregel, key, value)
        if problem:
            errors[key] = problem
            continue
        update[key] = _channel_value(pregel, key, current.get(key), value)
    if errors:
        raise ValidationError(errors)
    return update


def _channel(pregel: Any, key: str) -> Any:
    builder = getattr(pregel, "builder", None)
    return (getattr(builder, "channels", None) or {}).get(key) or pregel.channels.get(key)


def _type_problem(pregel: Any, key: str, value: Any) -> str:
    """Why ``value`` does not fit the key's declared type, as far as JSON types tell; "" when it fits."""
    channel = _channel(pregel, key)
    if channel is None:
        return ""
    try:
        from pydantic import TypeAdapter

        schema = TypeAdapter(channel.ValueType).json_schema()
    except Exception:  # noqa: BLE001 - a type pydantic cannot describe is not checked
        return ""
    expected = registry.json_types(schema, schema)
    if expected is None or value is None or registry.value_matches(value, expected):
        return ""
    return f"Expected {' or '.join(expected)}, got {registry.json_type_of(value)}."


def _is_messages_channel(channel: Any) -> bool:
    operator = getattr(channel, "operator", None)
    return "add_messages" in getattr(operator, "__qualname__", "")


def _channel_value(pregel: Any, key: str, old: Any, new: Any) -> Any:
    """The value to write so the key ends up as ``new``, whatever the channel's reducer."""
    from langgraph.channels.binop import BinaryOperatorAggregate
    from langgraph.types import Overwrite

    channel = _channel(pregel, key)
    if not isinstance(channel, BinaryOperatorAggregate):
        return new
    if _is_messages_channel(channel):
        # add_messages replaces a message with the same id and appends the rest;
        # messages the edit left out are removed by id.
        from langchain_core.messages import RemoveMessage, convert_to_messages

        if not isinstance(new, list):
            raise ValidationError({key: "Expected a list of messages."})
        try:
            messages = convert_to_messages(new)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise ValidationError({key: f"Not a list of messages: {exc}"}) from None
        kept = {m.id for m in messages if m.id}
        gone = [m["id"] for m in (old or []) if isinstance(m, dict) and m.get("id") and m["id"] not in kept]
        return [*(RemoveMessage(id=mid) for mid in gone), *messages]
    old_json = to_jsonable(old)
    if isinstance(old_json, list) and isinstance(new, list) and new[: len(old_json)] == old_json:
        return new[len(old_json):]  # only grew: hand the reducer the new items, as a node would
    return Overwrite(new)
