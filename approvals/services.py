"""Writes of the approvals app. The runner hands interrupts over through here;
reviewers decide, claim and release through here; the periodic task expires.

Lock order, everywhere: the execution row, then its approval rows (the runner's
hand-off writes them in that order too), so two writers never deadlock.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import events, live, payloads
from approvals.models import Approval
from orchestrator import audit, gates, roles
from orchestrator import services as executions
from orchestrator.errors import AlreadyDecided, InvalidState, PermissionDenied
from orchestrator.hooks import PendingInterrupt
from orchestrator.jsonable import to_jsonable
from orchestrator.models import AuditEntry, Execution

logger = logging.getLogger(__name__)
Status = Approval.Status


# --- the runner's hand-off ----------------------------------------------------------------------


def graph_timeout(graph_name: str) -> datetime.timedelta | None:
    """The graph's approval deadline from ``LOOPGATE_APPROVAL_TIMEOUTS`` (``"*"`` for any graph)."""
    table = getattr(settings, "LOOPGATE_APPROVAL_TIMEOUTS", {}) or {}
    seconds = table.get(graph_name, table.get("*"))
    return datetime.timedelta(seconds=seconds) if seconds else None


def _deadline(value: Any, graph_name: str) -> datetime.datetime | None:
    """The interrupt payload's own deadline first, else the graph's setting."""
    deadline = payloads.deadline_from(value)
    if deadline is None and (timeout := graph_timeout(graph_name)) is not None:
        deadline = timezone.now() + timeout
    return deadline


def _announce_created(approval_ids: list[UUID]) -> None:
    """After commit: reviewers hear about new approvals by email and webhook (a task, off the runner's path)."""
    if not approval_ids:
        return
    events.announce("created", approval_ids)
    from approvals.tasks import notify_created

    try:
        notify_created.delay([str(i) for i in approval_ids])
    except Exception:  # noqa: BLE001 - the approvals exist and the inbox shows them; only the heads-up is lost
        logger.exception("could not queue the notification of approvals %s", approval_ids)


def approval_create_for_interrupts(*, execution_id: UUID, interrupts: list[PendingInterrupt]) -> list[Approval]:
    """Make one pending approval per interrupt; an interrupt seen before keeps
    its approval (unique per execution and interrupt id), so a re-run never
    duplicates one. Call inside the runner's transaction. New approvals are
    announced to reviewers after commit."""
    graph_name = Execution.objects.filter(id=execution_id).values_list("graph_name", flat=True).first() or ""
    rows = []
    for item in interrupts:
        value = to_jsonable(item["value"])
        fmt, actions = payloads.parse(value, to_jsonable(item.get("response_schema")))
        if fmt == payloads.PLAIN and actions[0]["name"] == "review" and item["node"]:
            actions[0]["name"] = item["node"]  # interrupt("ok?") in node "ask" reads as "ask"
        rows.append(
            Approval(
                execution_id=execution_id,
                interrupt_id=item["id"],
                node=item["node"],
                checkpoint_id=item["checkpoint_id"],
                checkpoint_ns=item.get("checkpoint_ns", ""),
                format=fmt,
                payload=value,
                actions=actions,
                deadline=_deadline(value, graph_name),
            )
        )
    ids = [i["id"] for i in interrupts]
    with transaction.atomic():
        known = set(
            Approval.objects.filter(execution_id=execution_id, interrupt_id__in=ids).values_list("interrupt_id",
                                                                                                  flat=True)
        )
        Approval.objects.bulk_create(rows, ignore_conflicts=True)
        approvals = list(Approval.objects.filter(execution_id=execution_id, interrupt_id__in=ids))
        new = [a.id for a in approvals if a.interrupt_id not in known]
        transaction.on_commit(partial(_announce_created, new))
        return approvals


def approval_create_for_breakpoint(
    *, execution_id: UUID, checkpoint_id: str, nodes: list[str], when: str
) -> Approval:
    interrupt_id = f"breakpoint:{checkpoint_id}"
    graph_name = Execution.objects.filter(id=execution_id).values_list("graph_name", flat=True).first() or ""
    with transaction.atomic():
        approval, created = Approval.objects.get_or_create(
            execution_id=execution_id,
            interrupt_id=interrupt_id,
            defaults={
                "node": ", ".join(nodes),
                "checkpoint_id": checkpoint_id,
                "format": Approval.Format.BREAKPOINT,
                "payload": {"breakpoint": when, "nodes": nodes},
                "actions": payloads.breakpoint_actions(nodes, when),
                "deadline": _deadline(None, graph_name),
            },
        )
        if created:
            transaction.on_commit(partial(_announce_created, [approval.id]))
    return approval


def approval_create_for_fork_hold(
    *, execution_id: UUID, checkpoint_id: str, gate: str, reason: str, values: Any, parent: Execution,
    forked_by: User | None,
) -> Approval:
    """Hold a fork that wrote past a gate: it waits at its first checkpoint until a
    reviewer approves (it goes on, and settles what the parent still waits for at
    that gate) or rejects (it is cancelled). Call inside the fork's transaction."""
    waiting = list(Approval.objects.filter(execution_id=parent.id, status=Status.PENDING, node=gate))
    who = forked_by.get_username() if forked_by is not None else "Loopgate"
    description = (
        f"{who} forked execution {parent.short_id} and wrote the state below as “{gate}”, a node that asks a "
        f"person ({reason}). Approve to let the fork go on with this state as if “{gate}” had been answered; "
        "reject to cancel the fork."
    )
    if waiting:
        description += (
            f" Approving also settles {', '.join(a.title for a in waiting)}, still waiting on {parent.short_id}, "
            "so that it cannot act a second time."
        )
    values = to_jsonable(values) if isinstance(values, dict) else {}
    with transaction.atomic():
        approval = Approval.objects.create(
            execution_id=execution_id,
            interrupt_id=gates.hold_interrupt_id(checkpoint_id),
            node=gate,
            checkpoint_id=checkpoint_id,
            format=Approval.Format.BREAKPOINT,
            payload={"breakpoint": "fork", "nodes": [gate], "gate": gate, "reason": reason,
                     "fork_of": str(parent.id), "forked_by": who, "values": values},
            actions=[payloads.Action(name=gate, args=values, description=description,
                                     allowed_decisions=[payloads.APPROVE, payloads.REJECT], args_schema=None)],
            deadline=_deadline(None, parent.graph_name),
        )
        transaction.on_commit(partial(_announce_created, [approval.id]))
    return approval


def approvals_settle_by_fork(
    *, parent_id: UUID, fork_id: UUID, gate: str, user: User, detail: dict[str, Any] | None = None
) -> list[Approval]:
    """Someone who may decide let a fork go on past ``gate``: settle what the parent
    still waits for at that gate (each recorded as their decision, ``forked``), and
    cancel the parent, so the gated action can never run twice. Returns the settled
    approvals. Raises ``PermissionDenied`` when four eyes keep ``user`` from deciding
    the parent's approvals. Call inside a transaction."""
    parent = Execution.objects.select_for_update().get(id=parent_id)
    if four_eyes_blocks(user=user, execution=parent):
        raise PermissionDenied(
            "Four eyes: you started the execution this fork comes from, so another reviewer must decide its "
            "approvals."
        )
    waiting = list(Approval.objects.select_for_update(of=("self",))
                   .filter(execution_id=parent_id, status=Status.PENDING, node=gate))
    now = timezone.now()
    fork_short = str(fork_id)[:8]
    for approval in waiting:
        approval.status = Status.FORKED
        approval.decision = [{"type": "fork", "fork": str(fork_id)}]
        approval.comment = f"Continued in fork {fork_short}."
        approval.decided_by, approval.decided_at = user, now
        approval.save(update_fields=["status", "decision", "comment", "decided_by", "decided_at", "updated_at"])
        audit_record(kind=AuditEntry.Kind.DECISION, actor=user, approval=approval, graph_name=parent.graph_name,
                     outcome=Status.FORKED, comment=approval.comment,
                     detail={"fork": str(fork_id), "gate": gate, **(detail or {})})
    if waiting and parent.status == Execution.Status.INTERRUPTED:
        executions.execution_cancel(
            execution_id=parent.id, user=None,
            reason=f"Continued in fork {fork_short}: {user.get_username()} let the fork go on past “{gate}” in "
                   "place of this execution's approval.",
        )
    if waiting:
        transaction.on_commit(_announce)
        transaction.on_commit(partial(events.announce, "decided", [a.id for a in waiting]))
    return waiting


def approval_resume_map(*, execution_id: UUID, interrupt_ids: list[str]) -> dict[str, Any] | None:
    """The resume value for every pending interrupt, or None while any is undecided.

    LangGraph refuses a partial answer while several interrupts are pending, so
    the graph resumes only once all of them are decided.
    """
    approvals = {
        a.interrupt_id: a
        for a in Approval.objects.filter(execution_id=execution_id, interrupt_id__in=interrupt_ids)
    }
    if len(approvals) < len(set(interrupt_ids)):
        return None
    if any(a.status not in Approval.DECIDED for a in approvals.values()):
        return None
    return {interrupt_id: approvals[interrupt_id].resume_value for interrupt_id in interrupt_ids}


def approvals_cancel_for_execution(*, execution_id: UUID) -> int:
    """Cancel the execution's pending approvals (it ended or was cancelled); returns how many.
    ``update()`` skips ``auto_now``: ``updated_at`` is set here, the history's "when" for them."""
    pending = Approval.objects.filter(execution_id=execution_id, status=Approval.Status.PENDING)
    ids = list(pending.values_list("id", flat=True))
    cancelled = pending.update(status=Approval.Status.CANCELLED, updated_at=timezone.now())
    if cancelled:
        transaction.on_commit(partial(events.announce, "cancelled", ids))
    return cancelled


# --- audit -------------------------------------------------------------------------------------


def audit_record(*, kind: str, actor: User | None, approval: Approval, graph_name: str, outcome: str = "",
                 detail: dict[str, Any] | None = None, comment: str = "") -> AuditEntry:
    """One audit line about an approval (the core's log, ``orchestrator.audit``): the action is its actions'
    names. Call inside the transaction of the change it records."""
    return audit.audit_record(
        kind=kind, actor=actor, approval_id=approval.id, execution_id=approval.execution_id, graph_name=graph_name,
        action=", ".join(str(a.get("name", "")) for a in approval.actions or []), outcome=outcome, detail=detail,
        comment=comment,
    )


# --- deciding --------------------------------------------------------------------------------------


def four_eyes_applies(graph_name: str) -> bool:
    graphs = getattr(settings, "LOOPGATE_FOUR_EYES_GRAPHS", []) or []
    return "*" in graphs or graph_name in graphs


def four_eyes_blocks(*, user: User, execution: Execution) -> bool:
    """True when the graph needs four eyes and ``user`` started the execution."""
    return (
        four_eyes_applies(execution.graph_name)
        and execution.created_by_id is not None
        and execution.created_by_id == user.id
    )


def _lock(approval_id: UUID) -> tuple[Execution, Approval]:
    """Lock the execution, then the approval (the one lock order). Inside a transaction."""
    execution_id = Approval.objects.filter(id=approval_id).values_list("execution_id", flat=True).first()
    if execution_id is None:
        raise Approval.DoesNotExist(f"No approval {approval_id}.")
    execution = Execution.objects.select_for_update().get(id=execution_id)
    approval = Approval.objects.select_for_update(of=("self",)).select_related("decided_by", "claimed_by").get(
        id=approval_id
    )
    # select_related rows are read with the lock held, so decided_by is current.
    return execution, approval


def _resume_when_all_decided(execution: Execution) -> bool:
    """Queue the execution once no approval of it is pending. Inside the transaction
    that decided the last one, holding the execution's lock: two reviewers deciding
    the last two approvals at once cannot both miss it. The status flips in the
    same transaction (the reconciler re-queues it if the broker message is lost);
    the task is queued after commit."""
    if Approval.objects.filter(execution_id=execution.id, status=Status.PENDING).exists():
        return False
    return executions.execution_resume(execution_id=execution.id)


def _announce() -> None:
    live.announce_approvals_changed()


def approval_decide(*, approval_id: UUID, user: User, decisions: list[dict[str, Any]], comment: str = "",
                    via: str = "") -> Approval:
    """Record one reviewer's decisions on an approval and resume the graph once
    every pending approval of its execution is decided. Safe under concurrent clicks.

    Preconditions: ``user`` is a reviewer or admin (else ``PermissionDenied``),
    and, for a four-eyes graph, not the one who started the execution.
    ``decisions`` holds one ``payloads.Decision`` per action.

    1. Lock the execution, then the approval; a decided one raises ``AlreadyDecided``
       carrying it as it stands (who, when, what).
    2. Validate every decision against what the payload allows and edited
       arguments against their schema, before anything is saved
       (``ValidationError`` keyed by action and field).
    3. Save the decision, the resume value in the graph's format, and an audit line.
    4. If no approval of the execution is pending any more, mark it queued; after
       commit queue ``advance`` and announce the change to every open inbox.

    ``via`` names the door the decision came in by when it is not Loopgate's own (``"slack"``);
    the audit line records it.
    """
    if not roles.can_decide(user):
        raise PermissionDenied("Only reviewers and admins may decide approvals.")
    comment = (comment or "").strip()
    if len(comment) > payloads.MAX_MESSAGE:
        raise ValidationError({"comment": f"Keep the comment under {payloads.MAX_MESSAGE:,} characters."})
    with transaction.atomic():
        execution, approval = _lock(approval_id)
        if approval.status != Status.PENDING:
            raise AlreadyDecided(approval)
        if execution.is_finished:
            raise InvalidState(
                f"This execution already ended ({execution.get_status_display()}); its approvals no longer apply."
            )
        if four_eyes_blocks(user=user, execution=execution):
            raise PermissionDenied(
                "Four eyes: you started this execution, so another reviewer must decide its approvals."
            )
        checked = payloads.check_decisions(approval.actions, decisions, fmt=approval.format)
        now = timezone.now()
        approval.status = payloads.status_of(checked)
        approval.decision = list(checked)
        approval.resume_value = payloads.resume_value(
            approval.format, approval.actions, checked, by=user.get_username(), comment=comment
        )
        approval.comment = comment
        approval.decided_by = user
        approval.decided_at = now
        approval.save(update_fields=["status", "decision", "resume_value", "comment", "decided_by", "decided_at",
                                     "updated_at"])
        audit_record(
            kind=AuditEntry.Kind.DECISION, actor=user, approval=approval, graph_name=execution.graph_name,
            outcome=approval.status, comment=comment,
            detail={"decisions": list(checked), "resume_value": approval.resume_value,
                    "interrupt_id": approval.interrupt_id, "format": approval.format, **({"via": via} if via else {})},
        )
        if approval.status == Status.APPROVED and _is_fork_hold(approval):
            # A fork held at a gate goes on in place of its parent's approval there.
            approvals_settle_by_fork(parent_id=approval.payload["fork_of"], fork_id=execution.id,
                                     gate=approval.node, user=user, detail={"hold": str(approval.id)})
        _resume_when_all_decided(execution)
        transaction.on_commit(_announce)
        transaction.on_commit(partial(events.announce, "decided", [approval.id]))
    return approval


def _is_fork_hold(approval: Approval) -> bool:
    payload = approval.payload
    return (approval.format == Approval.Format.BREAKPOINT and isinstance(payload, dict)
            and payload.get("breakpoint") == "fork" and bool(payload.get("fork_of")))


@dataclass
class BulkOutcome:
    decided: list[Approval] = field(default_factory=list)
    already: list[Approval] = field(default_factory=list)
    refused: list[tuple[Approval, str]] = field(default_factory=list)


def approvals_decide_bulk(*, approval_ids: list[UUID], user: User, decision: str, comment: str = "") -> BulkOutcome:
    """Approve or reject several approvals, every action of each, one transaction
    per approval (so one refusal never undoes the others). An approval whose
    payload does not allow the decision for every action is refused, untouched."""
    if decision not in (payloads.APPROVE, payloads.REJECT):
        raise ValidationError({"decision": "Choose approve or reject."})
    if not roles.can_decide(user):
        raise PermissionDenied("Only reviewers and admins may decide approvals.")
    outcome = BulkOutcome()
    for approval in Approval.objects.filter(id__in=approval_ids).order_by("created_at"):
        decisions = [{"type": decision, "message": comment} for _ in approval.actions]
        try:
            outcome.decided.append(
                approval_decide(approval_id=approval.id, user=user, decisions=decisions, comment=comment)
            )
        except AlreadyDecided as exc:
            outcome.already.append(exc.approval)
        except ValidationError as exc:
            outcome.refused.append((approval, "; ".join(exc.messages)))
        except (PermissionDenied, InvalidState) as exc:
            outcome.refused.append((approval, exc.message))
    return outcome


# --- claiming ------------------------------------------------------------------------------------


def approval_claim(*, approval_id: UUID, user: User) -> Approval:
    """Mark the approval as being looked at by ``user``, so others see who is on it.
    Advisory: anyone allowed may still decide. Claiming one that someone else
    holds raises ``InvalidState`` naming them."""
    if not roles.can_decide(user):
        raise PermissionDenied("Only reviewers and admins may claim approvals.")
    with transaction.atomic():
        execution, approval = _lock(approval_id)
        if approval.status != Status.PENDING:
            raise AlreadyDecided(approval)
        if approval.claimed_by_id == user.id:
            return approval
        if approval.claimed_by_id is not None:
            raise InvalidState(f"{approval.claimed_by.get_username()} is already on it.",
                               extra={"claimed_by": approval.claimed_by.get_username()})
        approval.claimed_by, approval.claimed_at = user, timezone.now()
        approval.save(update_fields=["claimed_by", "claimed_at", "updated_at"])
        audit_record(kind=AuditEntry.Kind.CLAIM, actor=user, approval=approval, graph_name=execution.graph_name,
                     outcome="claimed")
        transaction.on_commit(_announce)
    return approval


def approval_release(*, approval_id: UUID, user: User) -> Approval:
    """Give a claimed approval back. Only its claimer or an admin may."""
    if not roles.can_decide(user):
        raise PermissionDenied("Only reviewers and admins may release approvals.")
    with transaction.atomic():
        execution, approval = _lock(approval_id)
        if approval.claimed_by_id is None:
            return approval
        if approval.claimed_by_id != user.id and not roles.is_admin(user):
            raise PermissionDenied(f"Only {approval.claimed_by.get_username()} or an admin may release it.")
        approval.claimed_by, approval.claimed_at = None, None
        approval.save(update_fields=["claimed_by", "claimed_at", "updated_at"])
        audit_record(kind=AuditEntry.Kind.RELEASE, actor=user, approval=approval, graph_name=execution.graph_name,
                     outcome="released")
        transaction.on_commit(_announce)
    return approval


# --- deadlines ----------------------------------------------------------------------------------


def approval_expire(*, approval_id: UUID, now: datetime.datetime | None = None) -> Approval | None:
    """Expire one overdue pending approval and answer the graph with a timeout
    (``payloads.timeout_value``), or cancel the execution when the payload allows
    no safe timeout answer. Returns None when it was not (or no longer) overdue.

    After commit: open inboxes update, a cancelled execution is announced to its
    trace page, and the escalation is queued (a task; ``escalated_at`` is set
    once its email is sent, see notifications.email_escalated).
    """
    now = now or timezone.now()
    with transaction.atomic():
        execution, approval = _lock(approval_id)
        if approval.status != Status.PENDING or approval.deadline is None or approval.deadline > now:
            return None
        value = payloads.timeout_value(approval.format, approval.actions)
        approval.status = Status.EXPIRED
        approval.resume_value = value
        approval.decided_at = now
        approval.save(update_fields=["status", "resume_value", "decided_at", "updated_at"])
        audit_record(
            kind=AuditEntry.Kind.EXPIRY, actor=None, approval=approval, graph_name=execution.graph_name,
            outcome="expired",
            detail={"deadline": approval.deadline.isoformat(), "resume_value": value,
                    "interrupt_id": approval.interrupt_id, "format": approval.format},
        )
        if value is None:
            # No answer the graph would take as "no": stop it rather than guess.
            approvals_cancel_for_execution(execution_id=execution.id)
            if execution.status == Execution.Status.INTERRUPTED:
                executions.execution_cancel(
                    execution_id=execution.id, user=None,
                    reason=f"The approval of {approval.title} expired unanswered, and its payload allows no "
                           "refusal to answer with.",
                )
        else:
            _resume_when_all_decided(execution)
        transaction.on_commit(partial(_escalate, approval.id))
        transaction.on_commit(_announce)
        transaction.on_commit(partial(events.announce, "expired", [approval.id]))
    return approval


def _escalate(approval_id: UUID) -> None:
    """After commit: the escalation's webhooks and email, as tasks (a mail server that is down
    never stops the expiry loop; the email task retries)."""
    from approvals.tasks import notify_escalated

    try:
        notify_escalated.delay([str(approval_id)])
    except Exception:  # noqa: BLE001 - the approval expired and the inbox shows it; only the heads-up is lost
        logger.exception("could not queue the escalation of approval %s", approval_id)


def approvals_expire_overdue(*, now: datetime.datetime | None = None) -> int:
    """The periodic task's work: expire every overdue pending approval (each in its
    own transaction), and cancel pending approvals whose execution already ended."""
    now = now or timezone.now()
    Approval.objects.filter(status=Status.PENDING, execution__status__in=Execution.FINISHED).update(
        status=Status.CANCELLED, updated_at=now
    )
    expired = 0
    for approval_id in Approval.objects.filter(status=Status.PENDING, deadline__lte=now).values_list("id",
                                                                                                     flat=True)[:500]:
        try:
            if approval_expire(approval_id=approval_id, now=now) is not None:
                expired += 1
        except Exception:  # noqa: BLE001 - one approval that cannot expire must not keep the others waiting
            logger.exception("could not expire approval %s; it stays pending and is tried again next run",
                             approval_id)
    if expired:
        logger.info("expired %d overdue approval(s)", expired)
    return expired
