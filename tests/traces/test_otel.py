"""OpenTelemetry export: a tiny OTLP/HTTP collector on 127.0.0.1 records what an execution sends."""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import UUID

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from orchestrator import services
from orchestrator.models import Execution
from tests.services import free_port, start_worker, wait_for
from traces import live, otel, tasks
from traces.models import Span

pytestmark = pytest.mark.django_db(transaction=True)


class Collector:
    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.requests.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list:
        out = []
        for _path, _type, body in self.requests:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    out.extend(scope_spans.spans)
        return out

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def export_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The export a worker runs when a run ends, run here instead (at the same moment)."""
    monkeypatch.setattr(live, "_queue_export", lambda execution_id: otel.execution_export(execution_id=UUID(execution_id)))


@pytest.fixture
def collector(settings, export_here) -> Iterator[Collector]:  # type: ignore[no-untyped-def]
    found = Collector()
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = found.url
    yield found
    found.stop()


@pytest.fixture
def collector_down(settings, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An endpoint where no collector listens yet; the exporter gives up after a second."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    url = f"http://127.0.0.1:{free_port()}"
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = url
    yield url


def sent_ids(found: Collector) -> Counter:
    return Counter(s.span_id for s in found.spans())


def attrs(span) -> dict:  # type: ignore[no-untyped-def]
    out = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = value.string_value or value.int_value if value.HasField("string_value") or value.HasField(
            "int_value") else None
    return out


class OtelExportTests:
    def test_a_run_sends_every_span_as_one_trace_under_the_execution(self, inline, collector) -> None:  # type: ignore[no-untyped-def]
        execution = inline(services.execution_start(
            graph_name="deep_research", input={"task": "Compare checkpointers", "max_iterations": 1}, user=None))
        assert execution.status == Execution.Status.SUCCEEDED, execution.error

        assert {path for path, _, _ in collector.requests} == {"/v1/traces"}
        assert {ctype for _, ctype, _ in collector.requests} == {"application/x-protobuf"}
        spans = collector.spans()
        ours = list(Span.objects.filter(execution=execution))
        assert len(spans) == len(ours) + 1
        assert {s.trace_id for s in spans} == {execution.id.bytes}

        root = next(s for s in spans if s.name == "execution deep_research")
        assert root.parent_span_id == b""
        assert attrs(root)["loopgate.status"] == "succeeded"
        by_id = {s.span_id: s for s in spans}
        for span in ours:
            sent = by_id[otel.span_id_of(span.id).to_bytes(8, "big")]
            assert sent.name == f"{span.kind} {span.name}"
            parent = otel.span_id_of(span.parent_id) if span.parent_id else otel.span_id_of(execution.id)
            assert sent.parent_span_id == parent.to_bytes(8, "big")
            assert sent.start_time_unix_nano == int(span.started_at.timestamp() * 1e9)
            if span.kind == Span.Kind.LLM:
                a = attrs(sent)
                assert a["gen_ai.request.model"] == span.model
                assert a["gen_ai.usage.input_tokens"] == span.input_tokens > 0
                assert a["gen_ai.usage.output_tokens"] == span.output_tokens > 0
                assert by_id[sent.parent_span_id].name.startswith("node ")
        assert sum(1 for s in spans if s.name == "tool search") == 1

    def test_each_span_is_sent_once_across_runs_of_one_execution(self, inline, collector) -> None:  # type: ignore[no-untyped-def]
        execution = inline(services.execution_start(graph_name="finops", input={"account": "acme-prod"}, user=None))
        assert execution.status == Execution.Status.INTERRUPTED
        first = collector.spans()
        assert first and all(s.name != "execution finops" for s in first)  # no root while it waits
        assert otel.execution_export(execution_id=execution.id) == 0  # nothing new to send
        assert len(collector.spans()) == len(first)

    def test_nothing_is_sent_without_an_endpoint(self, inline, settings) -> None:  # type: ignore[no-untyped-def]
        settings.OTEL_EXPORTER_OTLP_ENDPOINT = ""
        execution = inline(services.execution_start(graph_name="seed", input={"task": "t", "reports": [],
                                                                               "iterations": 0, "is_complete": False},
                                                    user=None))
        assert otel.execution_export(execution_id=execution.id) == 0
        assert not any(s.attributes.get(otel.SENT) for s in Span.objects.filter(execution=execution))


class OtelExportFailureTests:
    def test_the_end_of_a_run_queues_the_export_for_a_worker_instead_of_sending_it(self, inline, collector_down,
                                                                                    monkeypatch) -> None:  # type: ignore[no-untyped-def]
        queued: list[str] = []
        monkeypatch.setattr(tasks.export_spans, "delay", queued.append)
        execution = inline(services.execution_start(graph_name="finops", input={"account": "acme-prod"}, user=None))
        assert execution.status == Execution.Status.INTERRUPTED
        assert queued == [str(execution.id)]
        # A cancel (a web request) queues it too, and returns without talking to the collector.
        services.execution_cancel(execution_id=execution.id, user=None)
        assert queued == [str(execution.id)] * 2
        assert tasks.export_spans.acks_late

    def test_spans_are_marked_sent_only_once_the_collector_took_them(self, inline, collector_down,
                                                                     monkeypatch) -> None:  # type: ignore[no-untyped-def]
        monkeypatch.setattr(live, "_queue_export", lambda _id: None)
        execution = inline(services.execution_start(graph_name="finops", input={"account": "acme-prod"}, user=None))
        ours = list(Span.objects.filter(execution=execution))
        assert ours

        with pytest.raises(otel.ExportFailed):
            otel.execution_export(execution_id=execution.id)
        assert not any(s.attributes.get(otel.SENT) for s in Span.objects.filter(execution=execution))

        found = Collector(port=int(collector_down.rsplit(":", 1)[1]))
        try:
            assert otel.execution_export(execution_id=execution.id) == len(ours)
            assert otel.execution_export(execution_id=execution.id) == 0
            assert sent_ids(found) == Counter(otel.span_id_of(s.id).to_bytes(8, "big") for s in ours)
            assert all(s.attributes.get(otel.SENT) for s in Span.objects.filter(execution=execution))
        finally:
            found.stop()

    @pytest.mark.slow
    def test_a_collector_down_at_the_first_export_gets_every_span_once_from_the_workers_retry(
        self, inline, collector_down, request,
    ) -> None:  # type: ignore[no-untyped-def]
        worker = start_worker("otel", OTEL_EXPORTER_OTLP_ENDPOINT=collector_down, OTEL_EXPORTER_OTLP_TIMEOUT="1")
        found = None
        try:
            execution = inline(services.execution_start(
                graph_name="deep_research", input={"task": "Compare checkpointers", "max_iterations": 1}, user=None))
            assert execution.status == Execution.Status.SUCCEEDED, execution.error
            wait_for(lambda: "export_spans" in worker.output() and "Retry in" in worker.output(), timeout=60,
                     what="the worker's first export to fail and be retried")
            assert not any(s.attributes.get(otel.SENT) for s in Span.objects.filter(execution=execution))

            found = Collector(port=int(collector_down.rsplit(":", 1)[1]))
            wait_for(lambda: all(s.attributes.get(otel.SENT) for s in Span.objects.filter(execution=execution)),
                     timeout=60, what="the retried export")
            wait_for(lambda: len(sent_ids(found)) == Span.objects.filter(execution=execution).count() + 1, timeout=10,
                     what="the root span")
            expected = [otel.span_id_of(s.id) for s in Span.objects.filter(execution=execution)]
            expected.append(otel.span_id_of(execution.id))
            assert sent_ids(found) == Counter(i.to_bytes(8, "big") for i in expected)  # every span, once
        except BaseException:
            print(f"--- worker ---\n{worker.output()}")
            raise
        finally:
            worker.kill()
            if found is not None:
                found.stop()
