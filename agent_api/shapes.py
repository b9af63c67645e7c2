"""The JSON shapes of LangGraph's Agent Server API (langgraph_sdk's ``schema.py``), built from
Loopgate's graphs, executions and LangGraph state snapshots. Pure: no database writes."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.utils import timezone

from orchestrator.jsonable import to_jsonable
from orchestrator.models import Execution

# LangGraph's server names a graph's default assistant uuid5(this namespace, graph_id); so do we,
# so that an assistant id a client saved from LangGraph's server finds the same graph here.
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
LOADED_AT = timezone.now()

RUN_STATUS = {
    Execution.Status.QUEUED: "pending",
    Execution.Status.RUNNING: "running",
    Execution.Status.INTERRUPTED: "interrupted",
    Execution.Status.SUCCEEDED: "success",
    Execution.Status.FAILED: "error",
    Execution.Status.BUDGET_EXCEEDED: "error",
    Execution.Status.CANCELLED: "interrupted",
}


def assistant_id_for(graph_name: str) -> str:
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_name))


def iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def assistant(entry: Any) -> dict[str, Any]:
    return {
        "assistant_id": assistant_id_for(entry.name),
        "graph_id": entry.name,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "name": entry.name,
        "description": entry.description or None,
        "created_at": iso(LOADED_AT),
        "updated_at": iso(LOADED_AT),
    }


def graph_schemas(graph: Any) -> dict[str, Any]:
    """Input, output, state, config and context JSON Schemas; None for one LangGraph cannot describe."""
    from orchestrator import registry

    def attempt(make: Any) -> Any:
        try:
            return make()
        except Exception:  # noqa: BLE001 - a schema pydantic cannot build is reported missing, as LangGraph does
            return None

    return {
        "input_schema": attempt(lambda: registry.input_json_schema(graph)),
        "output_schema": attempt(graph.get_output_jsonschema),
        "state_schema": attempt(lambda: _state_schema(graph)),
        "config_schema": attempt(lambda: _config_schema(graph)),
        "context_schema": attempt(graph.get_context_jsonschema),
    }


def _state_schema(graph: Any) -> dict[str, Any]:
    from pydantic import create_model

    fields: dict[str, Any] = {}
    for key in graph.stream_channels_list:
        channel = graph.channels[key]
        try:
            create_model(key, __root__=(channel.UpdateType, None)).model_json_schema()
            fields[key] = (channel.UpdateType, None)
        except Exception:  # noqa: BLE001 - a type pydantic cannot describe is "any"
            fields[key] = (Any, None)
    return create_model(graph.get_name("State"), **fields).model_json_schema()


def _config_schema(graph: Any) -> dict[str, Any]:
    from pydantic import TypeAdapter

    model = graph.config_schema()
    fields = getattr(model, "model_fields", None) or {}
    if "configurable" not in fields:
        return {}
    schema = TypeAdapter(fields["configurable"].annotation).json_schema()
    for key in ("thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"):
        schema.get("properties", {}).pop(key, None)
    return schema


def run(run_row: Any, execution: Execution) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": str(execution.id),
        "thread_id": str(run_row.thread_id),
        "assistant_id": assistant_id_for(execution.graph_name),
        "created_at": iso(execution.created_at),
        "updated_at": iso(execution.updated_at),
        "status": RUN_STATUS.get(execution.status, "pending"),
        "metadata": run_row.metadata,
        "kwargs": run_row.kwargs,
        "multitask_strategy": run_row.multitask_strategy,
    }
    if execution.is_finished and execution.status != Execution.Status.SUCCEEDED:
        error = execution.error or {}
        body["cancel_reason"] = error.get("reason") if execution.status == Execution.Status.CANCELLED else None
    return body


def interrupt(item: Any) -> dict[str, Any]:
    body = {"id": item.id, "value": to_jsonable(item.value)}
    schema = getattr(item, "response_schema", None)
    if schema is not None:
        body["response_schema"] = to_jsonable(schema)
    return body


def checkpoint(config: dict[str, Any] | None) -> dict[str, Any] | None:
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("thread_id") or not configurable.get("checkpoint_id"):
        return None
    return {
        "thread_id": configurable["thread_id"],
        "checkpoint_ns": configurable.get("checkpoint_ns") or "",
        "checkpoint_id": configurable["checkpoint_id"],
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def state(snapshot: Any) -> dict[str, Any]:
    """A ``StateSnapshot`` as a ``ThreadState`` (subgraph snapshots nested in their tasks)."""
    from langgraph.types import StateSnapshot

    tasks = []
    for task in snapshot.tasks:
        nested = task.state if isinstance(task.state, StateSnapshot) else None
        tasks.append({
            "id": task.id,
            "name": task.name,
            "path": to_jsonable(list(task.path)),
            "error": str(task.error) if task.error is not None else None,
            "interrupts": [interrupt(i) for i in task.interrupts],
            "checkpoint": (task.state or {}).get("configurable") if task.state is not None and nested is None
            else None,
            "state": state(nested) if nested is not None else None,
            "result": to_jsonable(getattr(task, "result", None)),
        })
    current, parent = checkpoint(snapshot.config), checkpoint(snapshot.parent_config)
    return {
        "values": to_jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
        "metadata": to_jsonable(snapshot.metadata),
        "created_at": snapshot.created_at,
        "checkpoint": current,
        "parent_checkpoint": parent,
        "interrupts": [interrupt(i) for i in getattr(snapshot, "interrupts", ())],
        "checkpoint_id": current["checkpoint_id"] if current else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def empty_state() -> dict[str, Any]:
    return {"values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None, "checkpoint": None,
            "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None, "parent_checkpoint_id": None}


def thread(row: Any, *, status: str, values: Any, interrupts: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "thread_id": str(row.id),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "state_updated_at": iso(row.updated_at),
        "metadata": row.metadata,
        "status": status,
        "config": {},
        "values": values,
        "interrupts": interrupts,
        "error": None,
    }


def queued_run(row: Any) -> dict[str, Any]:
    """A run queued behind its thread's busy run (multitask_strategy "enqueue"), not started yet."""
    body: dict[str, Any] = {
        "run_id": str(row.id),
        "thread_id": str(row.thread_id),
        "assistant_id": assistant_id_for(row.graph_name),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "status": "interrupted" if row.cancelled else "error" if row.error else "pending",
        "metadata": {**(row.request.get("metadata") or {}), "graph_id": row.graph_name,
                     "assistant_id": assistant_id_for(row.graph_name)},
        "kwargs": row.request.get("kwargs") or {},
        "multitask_strategy": "enqueue",
    }
    if row.cancelled or row.error:
        body["cancel_reason"] = "Cancelled before it started." if row.cancelled else row.error
    return body
