"""OpenTelemetry export: when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, every span
is also sent to that collector (OTLP over HTTP, protobuf), one trace per execution.

Ids are derived, not random: the trace id is the execution's UUID, a span's id
comes from its own UUID, and the execution's root span from the execution's.
So spans of a run that was interrupted and resumed days later land in the same
trace under the same root, and a span sent twice is the same span.

Spans are sent when a run ends (succeeded, failed, interrupted, cancelled, ...):
``live.announce_execution`` queues ``traces.tasks.export_spans`` after the outcome
is committed, so no web request waits on a collector. The spans go out in one
request and are marked sent in their ``attributes`` only once the collector has
accepted it; a failed export raises ``ExportFailed`` and the task retries with
backoff, so a collector that is down loses nothing and the next run of the same
execution sends only its own.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from uuid import UUID

from django.conf import settings
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from orchestrator.errors import LoopgateError

logger = logging.getLogger(__name__)

SENT = "otel_exported"
MAX_ATTRIBUTE = 4096
_MASK64 = (1 << 64) - 1

_lock = threading.Lock()
_providers: dict[str, tuple[Any, Any, Any, Any]] = {}


class ExportFailed(LoopgateError):
    """The collector did not take the spans (down, refusing, too slow): try again later."""

    code = "otel_export_failed"
    status = 502


def enabled() -> bool:
    return bool(getattr(settings, "OTEL_EXPORTER_OTLP_ENDPOINT", ""))


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP puts traces under ``/v1/traces`` of the base endpoint (the spec's rule for this variable)."""
    return endpoint.rstrip("/") + "/v1/traces"


def trace_id_of(execution_id: UUID) -> int:
    return execution_id.int or 1


def span_id_of(span_id: UUID) -> int:
    return (span_id.int & _MASK64) or 1


class _PresetIds(IdGenerator):
    """Hands out the ids set for the span being made (per thread), random ones otherwise."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._local = threading.local()

    def preset(self, *, trace_id: int, span_id: int) -> None:
        self._local.trace_id, self._local.span_id = trace_id, span_id

    def generate_span_id(self) -> int:
        return getattr(self._local, "span_id", 0) or self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        return getattr(self._local, "trace_id", 0) or self._random.generate_trace_id()


class _Collected(SpanProcessor):
    """Keeps the spans this thread ends, for the caller to export itself.

    The SDK's batch and simple processors export in the background and only log a
    failure; the caller must know whether the collector took the spans before it
    marks them sent.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def begin(self) -> None:
        self._local.spans = []

    def take(self) -> list[Any]:
        spans, self._local.spans = getattr(self._local, "spans", None) or [], None
        return spans

    def on_end(self, span: Any) -> None:
        spans = getattr(self._local, "spans", None)
        if spans is not None:
            spans.append(span)


def _provider(endpoint: str) -> tuple[Any, Any, Any, Any]:
    with _lock:
        if endpoint not in _providers:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider

            ids = _PresetIds()
            collected = _Collected()
            provider = TracerProvider(resource=Resource.create({"service.name": "loopgate"}), id_generator=ids)
            provider.add_span_processor(collected)
            # The timeout (and the exporter's own quick retries within it) comes from
            # OTEL_EXPORTER_OTLP_TRACES_TIMEOUT / OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by default.
            _providers[endpoint] = (provider, ids, collected, OTLPSpanExporter(endpoint=traces_url(endpoint)))
        return _providers[endpoint]


def _ns(value: Any) -> int | None:
    return int(value.timestamp() * 1_000_000_000) if value is not None else None


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_ATTRIBUTE else text[:MAX_ATTRIBUTE] + "…"


def _attributes(span: Any, execution: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "loopgate.execution_id": str(execution.id),
        "loopgate.graph": execution.graph_name,
        "loopgate.graph_version": execution.graph_version,
        "loopgate.span_kind": span.kind,
    }
    if span.step is not None:
        attrs["loopgate.step"] = span.step
    if span.checkpoint_ns:
        attrs["loopgate.checkpoint_ns"] = span.checkpoint_ns
    if span.kind == "llm":
        attrs.update({
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": span.model,
            "gen_ai.usage.input_tokens": span.input_tokens,
            "gen_ai.usage.output_tokens": span.output_tokens,
        })
    elif span.kind == "tool":
        attrs["gen_ai.operation.name"] = "execute_tool"
        attrs["gen_ai.tool.name"] = span.name
    if span.input is not None:
        attrs["loopgate.input"] = _text(span.input)
    if span.output is not None:
        attrs["loopgate.output"] = _text(span.output)
    return attrs


def execution_export(*, execution_id: UUID) -> int:
    """Send the execution's spans not sent yet (and its root span once it has finished); how many were sent.

    Slow I/O: call it from ``traces.tasks.export_spans``, never in a request. The
    spans are marked sent only after the collector accepted them; otherwise
    ``ExportFailed`` is raised and nothing is marked, so a later call sends them.
    Two calls for one execution at the same moment could both send the same spans
    (their ids are derived, so a collector sees the same span twice, never a new one).
    """
    if not enabled():
        return 0
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

    from orchestrator.models import Execution
    from traces.models import Span

    execution = Execution.objects.filter(id=execution_id).first()
    if execution is None:
        return 0
    provider, ids, collected, exporter = _provider(settings.OTEL_EXPORTER_OTLP_ENDPOINT)
    tracer = provider.get_tracer("loopgate.traces")
    trace_id = trace_id_of(execution.id)
    root_id = span_id_of(execution.id)

    def context_under(parent_span_id: int) -> Any:
        parent = SpanContext(trace_id=trace_id, span_id=parent_span_id, is_remote=False,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return trace.set_span_in_context(NonRecordingSpan(parent))

    # Parents before children, so a collector that streams sees them in order.
    pending = [s for s in Span.objects.filter(execution=execution).order_by("started_at") if not s.attributes.get(SENT)]
    pending.sort(key=lambda s: (s.parent_id is not None, s.started_at))
    if not pending and not execution.is_finished:
        return 0
    collected.begin()
    for span in pending:
        parent_id = span_id_of(span.parent_id) if span.parent_id else root_id
        ids.preset(trace_id=trace_id, span_id=span_id_of(span.id))
        try:
            otel_span = tracer.start_span(
                f"{span.kind} {span.name}", context=context_under(parent_id),
                attributes=_attributes(span, execution), start_time=_ns(span.started_at),
            )
        finally:
            ids.preset(trace_id=0, span_id=0)
        if span.status == Span.Status.ERROR:
            otel_span.set_status(Status(StatusCode.ERROR, _text((span.error or {}).get("message", "error"))[:512]))
        otel_span.end(end_time=_ns(span.ended_at or span.started_at))
    if execution.is_finished:
        ids.preset(trace_id=trace_id, span_id=root_id)
        try:
            root = tracer.start_span(
                f"execution {execution.graph_name}", context=Context(),
                attributes={"loopgate.execution_id": str(execution.id), "loopgate.graph": execution.graph_name,
                            "loopgate.graph_version": execution.graph_version, "loopgate.status": execution.status,
                            "loopgate.tokens_used": execution.tokens_used,
                            **({"loopgate.parent_execution_id": str(execution.parent_id)} if execution.parent_id else {})},
                start_time=_ns(execution.started_at or execution.created_at),
            )
        finally:
            ids.preset(trace_id=0, span_id=0)
        if execution.status != Execution.Status.SUCCEEDED:
            root.set_status(Status(StatusCode.ERROR, execution.get_status_display()))
        root.end(end_time=_ns(execution.finished_at or execution.updated_at))
    batch = collected.take()
    result = exporter.export(batch)
    if result is not SpanExportResult.SUCCESS:
        raise ExportFailed(f"The collector at {settings.OTEL_EXPORTER_OTLP_ENDPOINT} did not accept "
                           f"{len(batch)} span(s) of execution {execution.id}.")
    for span in pending:
        Span.objects.filter(id=span.id).update(attributes={**span.attributes, SENT: True})
    return len(batch)
