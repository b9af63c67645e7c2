"""LLM accounting: tokens from the provider's usage data, cost from the price table, usage per
graph per day, and the deep-research example against an OpenAI-compatible stub server on a
real worker, whose recorded token counts must be exactly the ones the server reported."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import TestCase, override_settings
from django.utils import timezone
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult

from orchestrator import accounting, registry, services
from orchestrator.examples import deep_research
from orchestrator.models import Execution
from orchestrator.router import HashingEmbeddings
from tests.services import start_worker, wait_for
from traces.models import Span
from tests.factories import fixture_execution, fixture_llm_call

ROOT = Path(__file__).resolve().parents[2]
PRICES = {"model-a": ("1.00", "4.00"), "model-b": ("0.50", "2.00")}


# --- tokens and prices -----------------------------------------------------------------------------


def test_usage_comes_from_the_messages_usage_metadata_or_else_the_providers_token_usage() -> None:
    usage = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}
    result = LLMResult(generations=[[ChatGeneration(message=AIMessage("x", usage_metadata=usage))]])  # type: ignore[arg-type]
    assert accounting.usage_from_response(result) == (120, 30)
    legacy = ChatResult(generations=[ChatGeneration(message=AIMessage("x"))],
                        llm_output={"token_usage": {"prompt_tokens": 7, "completion_tokens": 3}})
    assert accounting.usage_from_response(legacy) == (7, 3)


@override_settings(LOOPGATE_PRICES=PRICES)
def test_cost_is_tokens_times_the_price_per_million() -> None:
    assert accounting.cost_of("model-a", 1_000_000, 500_000) == Decimal("3.00")
    assert accounting.cost_of("model-b", 2_000, 1_000) == Decimal("0.003")
    assert accounting.cost_of("unknown", 10, 10) is None


def _load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    probe = ("import django, json; from django.conf import settings; django.setup();"
             "print(json.dumps(settings.LOOPGATE_PRICES))")
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "LOOPGATE_PRICES")}
    base.update(DJANGO_SETTINGS_MODULE="orchestrator.settings", **env)
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=60)


def test_prices_from_the_environment_are_merged_over_the_table_and_bad_ones_fail_loudly() -> None:
    result = _load_settings(LOOPGATE_PRICES='{"my-model": [0.2, "0.8"], "gpt-4o": [3, 12]}')
    assert result.returncode == 0, result.stderr
    prices = json.loads(result.stdout.strip().splitlines()[-1])
    assert prices["my-model"] == ["0.2", "0.8"]
    assert prices["gpt-4o"] == ["3", "12"]
    assert prices["gpt-4o-mini"] == ["0.15", "0.60"]
    for bad in ('{"m": [1]}', '{"m": [-1, 2]}', "[1, 2]", "{not json"):
        result = _load_settings(LOOPGATE_PRICES=bad)
        assert result.returncode != 0
        assert "LOOPGATE_PRICES must be JSON like" in result.stderr


@override_settings(LOOPGATE_PRICES=PRICES)
class ExecutionCostTests(TestCase):
    def span(self, execution: Execution, model: str, input_tokens: int, output_tokens: int, **kw: Any) -> None:
        now = timezone.now()
        kind = kw.pop("kind", Span.Kind.LLM)
        fields = dict(execution=execution, name=model, model=model, input_tokens=input_tokens,
                      output_tokens=output_tokens, started_at=now, ended_at=now, **kw)
        if kind == Span.Kind.LLM:
            fixture_llm_call(**fields)
        else:
            Span.objects.create(kind=kind, **fields)

    def test_the_cost_of_an_execution_adds_up_its_llm_calls_per_model(self) -> None:
        execution = fixture_execution(graph_name="seed")
        self.span(execution, "model-a", 100_000, 10_000)
        self.span(execution, "model-a", 100_000, 10_000)
        self.span(execution, "model-b", 1_000_000, 0)
        self.span(execution, "search", 0, 0, kind=Span.Kind.TOOL)
        usage = accounting.execution_usage(execution)
        self.assertEqual([(m.model, m.calls, m.input_tokens, m.output_tokens) for m in usage.models],
                         [("model-a", 2, 200_000, 20_000), ("model-b", 1, 1_000_000, 0)])
        # model-a: 0.2 M × $1 + 0.02 M × $4 = 0.28; model-b: 1 M × $0.50 = 0.50.
        self.assertEqual(accounting.execution_cost(execution), Decimal("0.78"))
        self.assertEqual(accounting.execution_cost(execution.id), Decimal("0.78"))
        self.assertEqual(usage.total_tokens, 1_220_000)

    def test_without_llm_calls_the_cost_is_zero_and_an_unpriced_model_makes_it_unknown(self) -> None:
        execution = fixture_execution(graph_name="seed")
        self.assertEqual(accounting.execution_cost(execution), Decimal(0))
        self.span(execution, "model-a", 1_000, 0)
        self.span(execution, "mystery-model", 1_000, 0)
        self.assertIsNone(accounting.execution_cost(execution))
        self.assertEqual(accounting.execution_usage(execution).unpriced_models, ["mystery-model"])

    def test_usage_per_graph_per_day(self) -> None:
        today = fixture_execution(graph_name="seed", tokens_used=300)
        self.span(today, "model-a", 200, 100)
        fixture_execution(graph_name="seed", tokens_used=50)
        other = fixture_execution(graph_name="finops", tokens_used=10)
        self.span(other, "model-b", 10, 0)
        old = fixture_execution(graph_name="seed", tokens_used=1_000)
        Execution.objects.filter(id=old.id).update(created_at=timezone.now() - datetime.timedelta(days=2))
        ancient = fixture_execution(graph_name="seed", tokens_used=9_999)
        Execution.objects.filter(id=ancient.id).update(created_at=timezone.now() - datetime.timedelta(days=30))
        days = accounting.graph_usage_by_day(days=7)
        local_today = timezone.localdate()
        self.assertEqual(
            [(d.graph_name, (local_today - d.day).days, d.executions, d.tokens, d.usage.calls) for d in days],
            [("finops", 0, 1, 10, 1), ("seed", 0, 2, 350, 1), ("seed", 2, 1, 1_000, 0)],
        )
        self.assertEqual(days[1].cost, Decimal("0.0006"))


# --- the deep-research example against an OpenAI-compatible stub server ------------------------------


class StubLLM:
    """An OpenAI-compatible endpoint on 127.0.0.1: scripted answers per agent, tool calls for the
    search agent, and a usage block with distinctive numbers that the test checks were recorded."""

    def __init__(self) -> None:
        self.chat_usage: list[tuple[int, int]] = []
        self.embedding_requests = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.endswith("/chat/completions"):
                    answer = stub.chat(body)
                elif self.path.endswith("/embeddings"):
                    answer = stub.embeddings(body)
                else:
                    self.send_error(404)
                    return
                if body.get("stream"):
                    # Streamed (LangGraph streams LLM calls for the execution page's live tokens):
                    # the same answer as OpenAI's server-sent chunks, the usage in the last one.
                    data = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in _chunks(answer))
                    data += b"data: [DONE]\n\n"
                    kind = "text/event-stream"
                else:
                    data, kind = json.dumps(answer).encode(), "application/json"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        content: str | None = None
        tool_calls = None
        if "supervisor" in system:
            notes = len(re.findall(r"^\[\d+\]", last_user, re.MULTILINE))
            content = ("DONE\nReason: the two research notes are enough to write a good report." if notes >= 2 else
                       "CONTINUE\nNext query: how checkpoints let a crashed run resume\nReason: more research is needed.")
        elif "search agent" in system:
            wants_tool = body.get("tools") and body.get("tool_choice") != "none" and messages[-1]["role"] != "tool"
            if wants_tool:
                query = re.search(r"Query: (.+)", last_user).group(1)  # type: ignore[union-attr]
                tool_calls = [{"id": f"call_stub_{len(self.chat_usage)}", "type": "function",
                               "function": {"name": "search", "arguments": json.dumps({"query": query})}}]
            else:
                content = "Stub note: checkpoints after every super-step let a run resume (langgraph-docs)."
        else:
            content = "# Stub report\n\nCheckpoints make runs durable."
        with self.lock:
            k = len(self.chat_usage) + 1
            usage = (1_000 + 17 * k, 200 + 3 * k)  # distinctive, and different for every call
            self.chat_usage.append(usage)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": f"chatcmpl-stub-{k}", "object": "chat.completion", "created": 1_700_000_000,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
        }

    def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        with self.lock:
            self.embedding_requests += 1
        vectors = HashingEmbeddings().embed_documents([str(t) for t in texts])
        return {"object": "list", "model": body.get("model", ""),
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}}


def _chunks(answer: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A chat completion as OpenAI streams it: a word at a time, then the tool calls, the finish, the usage."""
    head = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
            "model": answer["model"]}
    choice = answer["choices"][0]
    message = choice["message"]
    yield {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    for word in re.findall(r"\s*\S+", message.get("content") or ""):
        yield {**head, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
    for index, call in enumerate(message.get("tool_calls") or []):
        yield {**head, "choices": [{"index": 0, "delta": {"tool_calls": [{**call, "index": index}]},
                                    "finish_reason": None}]}
    yield {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}
    yield {**head, "choices": [], "usage": answer["usage"]}


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    server = StubLLM()
    yield server
    server.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_deep_research_on_an_openai_compatible_endpoint_records_the_tokens_it_reported(stub, request) -> None:  # type: ignore[no-untyped-def]
    registry.reset()
    proc = start_worker("llm-endpoint", LOOPGATE_LLM_BASE_URL=stub.base_url, LOOPGATE_LLM_MODEL="stub-model-7",
                        LOOPGATE_LLM_API_KEY="sk-stub", LOOPGATE_EMBEDDINGS="auto", NO_PROXY="127.0.0.1,localhost")
    try:
        execution = services.execution_start(graph_name="deep_research", user=None,
                                             input={**deep_research.EXAMPLE_INPUT, "max_iterations": 5})
        wait_for(lambda: Execution.objects.filter(id=execution.id, status__in=Execution.FINISHED).exists(),
                 timeout=120, what="the deep-research run against the stub")
        execution.refresh_from_db()
        assert execution.status == Execution.Status.SUCCEEDED, execution.error
        assert execution.state["report"].startswith("# Stub report")
        assert execution.state["stopped_by"] == "supervisor" and len(execution.state["notes"]) == 2

        # Every chat call the server answered is an LLM span with exactly the tokens it reported, in order.
        spans = list(Span.objects.filter(execution=execution, kind=Span.Kind.LLM).order_by("started_at"))
        assert len(stub.chat_usage) == 8  # 3 supervisor, 2 × 2 search, 1 synthesizer
        assert [(s.input_tokens, s.output_tokens) for s in spans] == stub.chat_usage
        assert {s.model for s in spans} == {"stub-model-7"}
        assert all(s.status == Span.Status.OK for s in spans)
        assert execution.tokens_used == sum(i + o for i, o in stub.chat_usage)
        assert accounting.execution_usage(execution).total_tokens == execution.tokens_used

        # The supervisor's answers were routed with the endpoint's embeddings, and each decision recorded.
        routes = list(Span.objects.filter(execution=execution, kind=Span.Kind.ROUTER).order_by("started_at"))
        assert [r.output for r in routes] == ["search", "search", "synthesizer"]
        assert {r.attributes["backend"] for r in routes} == {"endpoint:text-embedding-3-small"}
        assert stub.embedding_requests >= 2  # the examples once, then each answer
    finally:
        proc.kill()
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(f"--- worker ---\n{proc.output()}")
