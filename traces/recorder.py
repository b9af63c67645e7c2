"""Writes the trace of a run as LangGraph streams it: node spans as tasks end,
a step per checkpoint, each with its update, state diff and tokens.

Fed with the events of ``stream_mode="debug"``. Tasks whose writes LangGraph
replays from a checkpoint on resume (cached) get a ``task`` event but no
``task_result``, so they are never recorded or counted twice.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any
from uuid import UUID

from django.db import IntegrityError, models, transaction
from django.db.models import F, Sum
from django.db.models.signals import post_save
from django.utils.dateparse import parse_datetime

from orchestrator import boundary
from orchestrator.jsonable import to_jsonable
from orchestrator.models import Execution
from traces import diff as diffs
from traces import live
from traces.models import Span, Step

logger = logging.getLogger(__name__)


def _ts(raw: Any) -> datetime.datetime:
    if isinstance(raw, datetime.datetime):
        return raw
    parsed = parse_datetime(str(raw)) if raw else None
    if parsed is None:
        from django.utils import timezone

        return timezone.now()
    return parsed


def _size(value: Any) -> int:
    try:
        return len(json.dumps(value, separators=(",", ":"), default=str).encode())
    except (TypeError, ValueError):
        return 0


def _one_statement() -> bool:
    """Whether trace rows go in as one statement each (Postgres, not inside a caller's transaction)."""
    connection = transaction.get_connection()
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _insert(obj: Any, *, count_step_of: UUID | None = None, counted: bool = True, along: Sequence[Any] = ()) -> None:
    """INSERT one row of ``obj`` in one statement (one round trip) that commits without waiting for
    its WAL flush. Sends ``post_save`` as ``save()`` would. With ``count_step_of`` (a step), the same
    statement adds one (if ``counted``) to that execution's ``step_count`` (both or neither) and reads
    back the row's ``cancel_requested`` and ``lease_owner`` for the runner's step-boundary check
    (orchestrator/boundary.py), which then need not read the row again.

    The run's next checkpoint commits synchronously and a flush covers all WAL
    before it, as does the outcome's commit at the end: only a crash of Postgres
    itself within those few milliseconds could lose the newest trace rows, never a
    killed worker (the commit has happened). Per step this spares two flush waits
    and seven round trips (BEGIN, COMMIT, the ORM's separate UPDATE, the boundary's
    SELECT; docs/PERFORMANCE.md). ``along``: rows written in the same statement before it (the
    step's node spans, which so cost no round trip of their own).
    """
    connection = transaction.get_connection()
    insert, values = _insert_sql(obj, connection)
    durability = "WITH durability AS (SELECT set_config('synchronous_commit', 'off', true))"
    ctes, params = [durability], []
    for number, other in enumerate(along):
        other_insert, other_values = _insert_sql(other, connection)
        ctes.append(f"along{number} AS ({other_insert})")
        params += other_values
    if count_step_of is None:
        sql = f"{', '.join(ctes)} {insert}"
        params += values
    else:
        quote = connection.ops.quote_name
        ctes.append(f"counted AS (UPDATE {quote(Execution._meta.db_table)} SET step_count = step_count + %s "
                    "WHERE id = %s RETURNING cancel_requested, lease_owner)")
        ctes.append(f"inserted AS ({insert})")
        sql = (f"{', '.join(ctes)} "
               "SELECT inserted.*, counted.cancel_requested, counted.lease_owner FROM inserted LEFT JOIN counted ON true")
        params += [1 if counted else 0, count_step_of, *values]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    obj.pk = row[0]
    if count_step_of is not None and row[2] is not None:
        boundary.saw(count_step_of, cancel_requested=row[1], lease_owner=row[2])
    for written in (*along, obj):
        written._state.adding, written._state.db = False, connection.alias
        post_save.send(sender=type(written), instance=written, created=True, update_fields=None, raw=False,
                       using=connection.alias)


def _insert_sql(obj: Any, connection: Any) -> tuple[str, list[Any]]:
    """``INSERT … SELECT %s, … FROM durability RETURNING pk`` of ``obj``'s row, and its parameters."""
    meta = obj._meta
    fields = [f for f in meta.concrete_fields if not isinstance(f, models.AutoField)]
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    quote = connection.ops.quote_name
    return (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"SELECT {', '.join(['%s'] * len(fields))} FROM durability RETURNING {quote(meta.pk.column)}"), values


class TraceRecorder:
    """``calls``: the run's ``TraceCallbackHandler``, which says which tasks made calls (spans);
    without it every step looks its calls up in the database."""

    def __init__(self, execution_id: UUID, *, calls: Any = None) -> None:
        self.execution_id = execution_id
        self.calls = calls
        self.node_spans: dict[str, Span] = {}  # this run's node spans by task id, until their step is recorded
        self._ended: set[str] = set()  # tasks whose end this run saw
        self.no_spans: set[str] = set()  # tasks of the step being recorded that never have spans
        self.task_starts: dict[str, datetime.datetime] = {}
        self.prev_values: dict[str, Any] | None = None
        self.prev_tasks: list[dict[str, Any]] = []
        self.prev_checkpoint_at: datetime.datetime | None = None
        self.new_steps: list[Step] = []
        self.failed_node: str | None = None
        # Node spans of the step being run that are written with its step row, in one statement
        # (spans of nodes that made no call, ended OK, on Postgres): see _record_node.
        self.unwritten: list[Span] = []

    def on_event(self, event: dict[str, Any]) -> Step | None:
        kind, payload, ts = event.get("type"), event.get("payload") or {}, _ts(event.get("timestamp"))
        if kind == "task":
            self.task_starts[payload["id"]] = ts
        elif kind == "task_result":
            self._record_node(event.get("step"), payload, ts)
        elif kind == "checkpoint":
            return self._record_checkpoint(payload, ts)
        return None

    def _record_node(self, step: Any, payload: dict[str, Any], ts: datetime.datetime) -> None:
        task_id = payload["id"]
        error = payload.get("error")
        interrupts = payload.get("interrupts") or []
        status = Span.Status.ERROR if error else Span.Status.INTERRUPTED if interrupts else Span.Status.OK
        if error:
            self.failed_node = payload.get("name")
        span = Span(
            execution_id=self.execution_id,
            kind=Span.Kind.NODE,
            name=payload.get("name", "?"),
            status=status,
            step=step if isinstance(step, int) else None,
            task_id=task_id,
            output=to_jsonable(payload.get("result")),
            error={"message": str(error)} if error else None,
            attributes={"interrupts": to_jsonable(interrupts)} if interrupts else {},
            started_at=self.task_starts.pop(task_id, ts),
            ended_at=ts,
        )
        if _one_statement() and not self._made_calls([task_id]):  # nothing to adopt
            if status == Span.Status.OK:
                # Its step's checkpoint comes next: the span goes in with the step's row, one round
                # trip fewer per step. An error or an interrupt is written at once, with what waits.
                self.unwritten.append(span)
            else:
                _insert(span, along=self._take_unwritten())
        else:
            self.write_pending()
            with transaction.atomic():
                span.save(force_insert=True)
                # LLM and tool spans are written while the node runs, before its own
                # span exists; adopt them now. Calls made inside a subgraph carry the
                # subgraph's step, not ours: the node's step is the one they ran in.
                Span.objects.filter(execution_id=self.execution_id, task_id=task_id, parent__isnull=True).exclude(
                    kind=Span.Kind.NODE
                ).update(parent=span, step=span.step)
        self.node_spans[task_id] = span
        self._ended.add(task_id)

    def _take_unwritten(self) -> list[Span]:
        taken, self.unwritten = self.unwritten, []
        return taken

    def write_pending(self) -> None:
        """Write the node spans still waiting for their step's row (the run stopped before it, or the
        step is not recorded)."""
        if self.unwritten:
            spans = self._take_unwritten()
            _insert(spans[-1], along=spans[:-1])

    def _made_calls(self, task_ids: list[str], *, llm: bool = False) -> bool:
        """Whether any of these tasks may have written call spans (always, when the handler is unknown)."""
        if self.calls is None:
            return True
        seen = self.calls.tasks_with_llm if llm else self.calls.tasks_with_spans
        return any(task_id in seen for task_id in task_ids)

    def _record_checkpoint(self, payload: dict[str, Any], ts: datetime.datetime) -> Step | None:
        configurable = payload["config"]["configurable"]
        checkpoint_id = configurable["checkpoint_id"]
        metadata = payload.get("metadata") or {}
        step_number = metadata.get("step", -1)
        values = to_jsonable(payload.get("values") or {})
        produced_by, self.prev_tasks = self.prev_tasks, list(payload.get("tasks") or [])
        before, self.prev_values = self.prev_values, values
        started, self.prev_checkpoint_at = self.prev_checkpoint_at, ts
        if step_number < 0 or before is None:
            # The input checkpoint, or the checkpoint a resumed run starts from
            # (already recorded by the run that wrote it): only a baseline.
            self.write_pending()
            return None
        task_ids = [t["id"] for t in produced_by]
        # LangGraph's own input task writes the input: it runs no node and makes no call.
        self.no_spans = {t["id"] for t in produced_by if t.get("name") == "__start__"}
        node_spans = self._node_spans(task_ids)
        update: dict[str, Any] = {}
        for span in node_spans:
            key = span.name if span.name not in update else f"{span.name}#{len(update)}"
            update[key] = span.output
        names = [t.get("name", "?") for t in produced_by] or [metadata.get("source", "update")]
        tokens = self._tokens(task_ids)
        diff = diffs.state_diff(before, values)
        changed_keys = {entry["path"].split("[")[0].split(".")[0] for entry in diff}
        step_started = min([s.started_at for s in node_spans], default=started or ts)
        counted = names != ["__start__"]
        try:
            step = self._write_step(counted, Step(
                execution_id=self.execution_id,
                step=step_number,
                nodes=names,
                checkpoint_id=checkpoint_id,
                parent_checkpoint_id=(payload.get("parent_config") or {}).get("configurable", {}).get(
                    "checkpoint_id", ""
                ),
                checkpoint_ns=configurable.get("checkpoint_ns", ""),
                update=update,
                diff=diff,
                tokens=tokens,
                bytes_written=sum(_size(values.get(k)) for k in changed_keys if k in values),
                started_at=step_started,
                finished_at=ts,
            ))
        except IntegrityError:
            self.write_pending()  # the statement wrote none of them
            return None  # recorded before (a replay of an already-recorded checkpoint)
        self.new_steps.append(step)
        return step

    def _write_step(self, counted: bool, step: Step) -> Step:
        """The step's row and, when ``counted``, one more in the execution's ``step_count`` (steps as
        LangGraph counts them against the recursion limit: the input's own step, ``__start__``, is
        shown in the timeline but not counted), together; announced after commit."""
        if _one_statement():
            along = self._take_unwritten()
            try:
                _insert(step, count_step_of=self.execution_id, counted=counted, along=along)
            except IntegrityError:
                self.unwritten = along + self.unwritten
                raise
            live.announce_step(self.execution_id, step.id)
            return step
        self.write_pending()
        with transaction.atomic():
            step.save(force_insert=True)
            if counted:
                Execution.objects.filter(id=self.execution_id).update(step_count=F("step_count") + 1)
            transaction.on_commit(partial(live.announce_step, self.execution_id, step.id))
        return step

    def _node_spans(self, task_ids: list[str]) -> list[Span]:
        """The step's successful node spans, oldest first: this run's from memory; a task this run did not
        see end (its write replayed from the checkpoint on resume) from the database."""
        mine = [self.node_spans.pop(task_id) for task_id in task_ids if task_id in self.node_spans]
        missing = [task_id for task_id in task_ids if task_id not in {span.task_id for span in mine}
                   and task_id not in self.no_spans]
        if missing:
            mine += Span.objects.filter(execution_id=self.execution_id, kind=Span.Kind.NODE, task_id__in=missing)
        return sorted((span for span in mine if span.status == Span.Status.OK), key=lambda span: span.started_at)

    def _tokens(self, task_ids: list[str]) -> int:
        """Tokens of the step's LLM calls; no query when none of its tasks made one in this run."""
        seen_all = self.calls is not None and all(t in self._ended or t in self.no_spans for t in task_ids)
        if seen_all and not self._made_calls(task_ids, llm=True):
            return 0
        return (
            Span.objects.filter(execution_id=self.execution_id, task_id__in=task_ids, kind=Span.Kind.LLM).aggregate(
                n=Sum("input_tokens") + Sum("output_tokens")
            )["n"]
            or 0
        )
