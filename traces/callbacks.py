"""The LangChain callback handler attached to every run (traces/observer.py): LLM,
tool and routing calls become spans under their node. Around each LLM call it asks
the core's ``BudgetGuard`` (composition: the guard charges the tokens and refuses
or stops over-budget calls; this handler only records what happened)."""

from __future__ import annotations

import datetime
import functools
import threading
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.db import connection
from django.utils import timezone
from langchain_core.callbacks import BaseCallbackHandler

from orchestrator import accounting
from orchestrator.budgets import BudgetGuard, ExecutionOverBudget
from orchestrator.budgets.guard import estimate_tokens
from orchestrator.jsonable import to_jsonable
from orchestrator.namespaces import outer_task_id
from orchestrator.router import ROUTE_EVENT
from traces.models import Span


def _model_name(serialized: dict[str, Any] | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> str:
    metadata = metadata or {}
    if metadata.get("ls_model_name"):
        return str(metadata["ls_model_name"])
    invocation = kwargs.get("invocation_params") or {}
    for key in ("model", "model_name"):
        if invocation.get(key):
            return str(invocation[key])
    serialized = serialized or {}
    return str((serialized.get("kwargs") or {}).get("model") or serialized.get("name") or "unknown")


def _gives_back_connection(method: Callable[..., Any]) -> Callable[..., Any]:
    """Parallel nodes call models on LangGraph's short-lived threads: a database connection such a thread
    opened goes back (to Django's pool) before the thread ends, or it would stay checked out for good."""

    @functools.wraps(method)
    def wrapper(self: TraceCallbackHandler, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            if threading.current_thread() is not self.home_thread and not connection.in_atomic_block:
                connection.close()

    return wrapper


class TraceCallbackHandler(BaseCallbackHandler):
    raise_error = True  # a budget refusal must stop the call, not be logged and ignored

    def __init__(self, execution_id: UUID, *, guard: BudgetGuard | None = None) -> None:
        self.execution_id = execution_id
        self.guard = guard or BudgetGuard(execution_id)
        self.home_thread = threading.current_thread()
        self._open: dict[UUID, dict[str, Any]] = {}
        self._lock = threading.Lock()
        # Tasks (outer task ids) this handler wrote spans for, and those with LLM calls: the
        # recorder skips adopting children and summing tokens for steps whose tasks made none.
        self.tasks_with_spans: set[str] = set()
        self.tasks_with_llm: set[str] = set()

    # -- LLM calls ------------------------------------------------------------
    @_gives_back_connection
    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        tools = (kwargs.get("invocation_params") or {}).get("tools")
        self._llm_start(run_id, _model_name(serialized, metadata, kwargs), metadata,
                        to_jsonable(messages[0] if len(messages) == 1 else messages),
                        prompt_tokens=estimate_tokens(messages) + estimate_tokens(to_jsonable(tools)))

    @_gives_back_connection
    def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        self._llm_start(run_id, _model_name(serialized, metadata, kwargs), metadata, prompts,
                        prompt_tokens=estimate_tokens(prompts))

    def _llm_start(self, run_id: UUID, model: str, metadata: dict[str, Any] | None, input: Any, *,
                   prompt_tokens: int) -> None:
        self._start(run_id, Span.Kind.LLM, model, metadata, input=input)
        try:
            self.guard.before_call(run_id=run_id, model=model, metadata=metadata, prompt_tokens=prompt_tokens)
        except ExecutionOverBudget as refused:
            # The refused call shows in the trace where it would have been, as an error that spent nothing.
            opened = self._pop(run_id)
            if opened is not None:
                span = self._write(opened, status=Span.Status.ERROR,
                                   error={"type": "ExecutionOverBudget", "message": refused.message},
                                   attributes={"refused": True})
                refused.extra["call"].update(span_id=str(span.id), input_tokens=0, output_tokens=0)
            raise

    @_gives_back_connection
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        opened = self._pop(run_id)
        if opened is None:
            return
        input_tokens, output_tokens = accounting.usage_from_response(response)
        generations = [g for gs in response.generations for g in gs]
        output = [to_jsonable(getattr(g, "message", None) or g.text) for g in generations]
        self._write(opened, status=Span.Status.OK, output=output[0] if len(output) == 1 else output,
                           input_tokens=input_tokens, output_tokens=output_tokens)
        self.guard.after_call(run_id=run_id, model=opened["name"], metadata=opened["metadata"],
                              input_tokens=input_tokens, output_tokens=output_tokens)

    @_gives_back_connection
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.guard.call_failed(run_id=run_id)
        opened = self._pop(run_id)
        if opened is not None:
            self._write(opened, status=Span.Status.ERROR, error={"type": type(error).__name__, "message": str(error)})

    # -- tool calls -------------------------------------------------------------
    @_gives_back_connection
    def on_tool_start(
        self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
        metadata: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        name = (serialized or {}).get("name") or "tool"
        self._start(run_id, Span.Kind.TOOL, str(name), metadata, input=to_jsonable(inputs if inputs is not None else input_str))

    @_gives_back_connection
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        opened = self._pop(run_id)
        if opened is not None:
            self._write(opened, status=Span.Status.OK, output=to_jsonable(getattr(output, "content", output)))

    @_gives_back_connection
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        opened = self._pop(run_id)
        if opened is not None:
            self._write(opened, status=Span.Status.ERROR, error={"type": type(error).__name__, "message": str(error)})

    # -- routing decisions (orchestrator/router.py) ---------------------------------------
    @_gives_back_connection
    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        if name != ROUTE_EVENT or not isinstance(data, dict):
            return
        key = uuid.uuid4()
        self._start(key, Span.Kind.ROUTER, str(data.get("router") or "router"), metadata,
                    input=to_jsonable(data.get("text", "")))
        opened = self._pop(key)
        if opened is None:
            return
        elapsed = float(data.get("elapsed_ms") or 0)
        opened["started_at"] = timezone.now() - datetime.timedelta(milliseconds=elapsed)
        attributes = {k: to_jsonable(v) for k, v in data.items() if k not in ("text", "router")}
        self._write(opened, status=Span.Status.OK, output=to_jsonable(data.get("chosen")), attributes=attributes)

    # -- helpers -----------------------------------------------------------------------
    def _start(self, run_id: UUID, kind: str, name: str, metadata: dict[str, Any] | None, **fields: Any) -> None:
        metadata = metadata or {}
        ns = metadata.get("langgraph_checkpoint_ns") or metadata.get("checkpoint_ns") or ""
        step = metadata.get("langgraph_step")
        attributes: dict[str, Any] = {}
        if "|" in ns:
            # A call inside a subgraph: LangGraph gives the subgraph's own step and
            # node. The span belongs to the outer node's task (the only task the
            # recorder sees); its step is that node's, set when the node span adopts
            # it. The inner path stays here for the reader.
            attributes["subgraph"] = {"node": metadata.get("langgraph_node"), "step": step, "checkpoint_ns": ns}
            step = None
        with self._lock:
            self._open[run_id] = {
                "kind": kind, "name": name, "started_at": timezone.now(),
                "step": step, "task_id": outer_task_id(ns), "checkpoint_ns": ns, "attributes": attributes,
                "metadata": metadata,
                **fields,
            }

    def _pop(self, run_id: UUID) -> dict[str, Any] | None:
        with self._lock:
            return self._open.pop(run_id, None)

    def _write(self, opened: dict[str, Any], **fields: Any) -> Span:
        fields["attributes"] = {**opened.get("attributes", {}), **fields.get("attributes", {})}
        self.tasks_with_spans.add(opened["task_id"])
        if opened["kind"] == Span.Kind.LLM:
            self.tasks_with_llm.add(opened["task_id"])
        return Span.objects.create(
            execution_id=self.execution_id,
            kind=opened["kind"],
            name=opened["name"][:255],
            model=opened["name"][:200] if opened["kind"] == Span.Kind.LLM else "",
            step=opened["step"] if isinstance(opened["step"], int) else None,
            task_id=opened["task_id"],
            checkpoint_ns=opened["checkpoint_ns"][:255],
            input=opened.get("input"),
            started_at=opened["started_at"],
            ended_at=timezone.now(),
            **fields,
        )
