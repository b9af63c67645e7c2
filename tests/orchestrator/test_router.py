"""Routers for conditional edges: the embeddings backends, the semantic router, the
structured-output LLM router, and the router spans a run records."""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import TransactionTestCase, override_settings
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from orchestrator import budgets, router
from orchestrator.budgets import ExecutionOverBudget
from orchestrator.examples import deep_research
from orchestrator.examples.offline_model import OfflineChatModel
from orchestrator.models import Execution
from orchestrator.router import HashingEmbeddings, LLMRouter, SemanticRouter, cosine
from traces.callbacks import TraceCallbackHandler
from traces.models import Span
from tests.factories import fixture_execution

OFFLINE = override_settings(LOOPGATE_LLM_BASE_URL="", LOOPGATE_LLM_MODEL="", LOOPGATE_LLM_API_KEY="",
                            LOOPGATE_EMBEDDINGS="auto")


@pytest.fixture(autouse=True)
def _fresh_backends() -> Iterator[None]:
    router._cache.clear()
    yield
    router._cache.clear()


ROUTES = {
    "billing": ["a question about an invoice, a payment or a refund", "charge my credit card"],
    "support": ["the app crashes with an error", "how do I reset my password"],
}


# --- embeddings ----------------------------------------------------------------------------------


def test_hashing_embeddings_are_deterministic_normalised_and_lexical() -> None:
    first, second = HashingEmbeddings(), HashingEmbeddings()
    vector = first.embed_query("Refund my last invoice")
    assert vector == second.embed_query("Refund my last invoice")
    assert len(vector) == 512
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-9
    # Shared words and word pieces make texts similar...
    assert cosine(vector, first.embed_query("the invoice refund")) > 0.5
    assert cosine(first.embed_query("checkpoint"), first.embed_query("checkpointed")) > 0.5
    # ...meaning does not: it is lexical, not semantic.
    assert abs(cosine(first.embed_query("stop"), first.embed_query("halt"))) < 0.2
    assert first.embed_documents(["a", "b"]) == [first.embed_query("a"), first.embed_query("b")]


@OFFLINE
def test_without_an_endpoint_or_a_local_model_routing_is_lexical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router, "_local_model_available", lambda: False)
    embeddings, name = router.get_embeddings()
    assert isinstance(embeddings, HashingEmbeddings) and name == "hashing"


def test_with_an_endpoint_the_openai_compatible_embeddings_are_used() -> None:
    from langchain_openai import OpenAIEmbeddings

    with override_settings(LOOPGATE_LLM_BASE_URL="http://127.0.0.1:9/v1", LOOPGATE_LLM_MODEL="m",
                           LOOPGATE_LLM_API_KEY="sk-x", LOOPGATE_EMBEDDINGS="auto",
                           LOOPGATE_EMBEDDINGS_MODEL="nomic-embed-text"):
        embeddings, name = router.get_embeddings()
    assert isinstance(embeddings, OpenAIEmbeddings)
    assert name == "endpoint:nomic-embed-text"
    assert embeddings.model == "nomic-embed-text"
    assert embeddings.openai_api_base == "http://127.0.0.1:9/v1"
    assert embeddings.check_embedding_ctx_length is False


def test_hashing_can_be_forced_even_with_an_endpoint() -> None:
    with override_settings(LOOPGATE_LLM_BASE_URL="http://127.0.0.1:9/v1", LOOPGATE_EMBEDDINGS="hashing"):
        assert router.get_embeddings()[1] == "hashing"


@OFFLINE
def test_a_local_model_is_used_only_from_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[tuple[str, dict[str, Any]]] = []

    class FakeSentenceTransformer:
        def __init__(self, name: str, **kwargs: Any) -> None:
            loaded.append((name, kwargs))
            if name == "not-on-disk":
                raise OSError("not found in the local cache")

        def encode(self, texts: list[str], normalize_embeddings: bool = False) -> list[list[float]]:
            return [[1.0, float(len(t))] for t in texts]

    monkeypatch.setitem(sys.modules, "sentence_transformers",
                        types.SimpleNamespace(SentenceTransformer=FakeSentenceTransformer))
    monkeypatch.setattr(router, "_local_model_available", lambda: True)
    embeddings, name = router.get_embeddings()
    assert name == "local:all-MiniLM-L6-v2"
    assert loaded == [("all-MiniLM-L6-v2", {"local_files_only": True})]  # never downloads
    assert embeddings.embed_query("abc") == [1.0, 3.0]
    # A model that is not on disk means lexical routing, not a download.
    router._cache.clear()
    with override_settings(LOOPGATE_EMBEDDINGS_LOCAL_MODEL="not-on-disk"):
        assert router.get_embeddings()[1] == "hashing"


# --- the semantic router ------------------------------------------------------------------------


def test_the_route_with_the_most_similar_example_wins() -> None:
    choose = SemanticRouter("topic", ROUTES, embeddings=HashingEmbeddings())
    decision = choose.decide("I was charged twice, please refund the payment")
    assert decision.route == "billing"
    assert set(decision.scores) == {"billing", "support"}
    assert decision.scores["billing"] > decision.scores["support"]
    assert choose.decide("the app crashes on start").route == "support"


def test_below_the_threshold_or_without_text_the_default_is_chosen() -> None:
    choose = SemanticRouter("topic", ROUTES, embeddings=HashingEmbeddings(), default="support", threshold=0.9)
    decision = choose.decide("charge my credit card please")
    assert decision.route == "support" and "below the threshold" in decision.fallback
    empty = choose.decide("   ")
    assert empty.route == "support" and empty.fallback == "no text to route on"


def test_routes_need_examples_and_a_known_default() -> None:
    with pytest.raises(ValueError):
        SemanticRouter("r", {"a": []})
    with pytest.raises(ValueError):
        SemanticRouter("r", ROUTES, default="nowhere")


def test_a_failing_backend_falls_back_to_lexical_routing_and_says_so() -> None:
    class Broken(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise ConnectionError("endpoint down")

        def embed_query(self, text: str) -> list[float]:
            raise ConnectionError("endpoint down")

    decision = SemanticRouter("topic", ROUTES, embeddings=Broken()).decide("refund the invoice")
    assert decision.route == "billing"
    assert decision.backend == "hashing"
    assert "ConnectionError: endpoint down" in decision.fallback


def test_the_router_reads_the_latest_message_by_default_and_works_outside_a_run() -> None:
    choose = SemanticRouter("topic", ROUTES, embeddings=HashingEmbeddings())
    state = {"messages": [HumanMessage("the app crashes"), AIMessage("Please refund the invoice payment")]}
    assert choose(state) == "billing"


@OFFLINE
def test_deep_research_routes_the_supervisors_answers() -> None:
    model = OfflineChatModel(purpose="supervisor")
    task = "Compare durable execution options for LangGraph agents"
    for notes, expected in ((0, "search"), (1, "search"), (2, "search"), (3, "synthesizer")):
        numbered = "\n".join(f"[{i}] note {i}" for i in range(1, notes + 1))
        answer = model._supervisor(f"Task: {task}\nResearch notes so far:\n{numbered}")
        state = {"messages": [AIMessage(answer, name="supervisor")], "iterations": notes, "max_iterations": 3}
        assert deep_research.route_after_supervisor(state) == expected, answer
    # The guard comes first, whatever the answer.
    state = {"messages": [AIMessage("CONTINUE\nNext query: more", name="supervisor")],
             "stopped_by": "max_iterations", "iterations": 3, "max_iterations": 3}
    assert deep_research.route_after_supervisor(state) == "synthesizer"


# --- the LLM router --------------------------------------------------------------------------------


class StructuredFake(BaseChatModel):
    """Answers with structured output as a provider with tool calling would."""

    answer: dict[str, Any] = {}
    model: str = "fake-router"

    @property
    def _llm_type(self) -> str:
        return "fake-router"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(""))])

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        assert schema["properties"]["route"]["enum"] == ["billing", "support"]
        return RunnableLambda(lambda _messages: self.answer)


class NoStructuredOutput(StructuredFake):
    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError


DESCRIPTIONS = {"billing": "invoices, payments, refunds", "support": "errors, crashes, passwords"}


def test_the_llm_router_takes_the_models_structured_choice() -> None:
    model = StructuredFake(answer={"route": "support", "reason": "it crashes", "confidence": 0.8})
    decision = LLMRouter("topic", DESCRIPTIONS, model=model, default="billing").decide("the app crashes")
    assert (decision.route, decision.reason, decision.fallback) == ("support", "it crashes", "")
    assert decision.scores == {"billing": 0.0, "support": 0.8}
    assert decision.backend == "llm:fake-router"


@pytest.mark.parametrize(
    ("model", "why"),
    [(StructuredFake(answer={"route": "sales", "reason": "?"}), "no valid route ('sales')"),
     (NoStructuredOutput(), "the model has no structured output")],
    ids=["invalid-route", "no-structured-output"],
)
def test_the_llm_router_falls_back_to_its_default(model: BaseChatModel, why: str) -> None:
    decision = LLMRouter("topic", DESCRIPTIONS, model=model, default="billing").decide("the app crashes")
    assert decision.route == "billing"
    assert why in decision.fallback and "chose the default route" in decision.fallback


def test_the_offline_model_is_handled_gracefully() -> None:
    choose = LLMRouter("topic", DESCRIPTIONS, model=lambda: OfflineChatModel(purpose="router"), default="support")
    decision = choose.decide("I was charged twice")
    assert decision.route == "support"
    assert decision.fallback


def test_a_budget_refusal_inside_the_llm_router_still_stops_the_run() -> None:
    class Refused(StructuredFake):
        def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            def refuse(_messages: Any) -> Any:
                raise ExecutionOverBudget("refused")

            return RunnableLambda(refuse)

    with pytest.raises(ExecutionOverBudget):
        LLMRouter("topic", DESCRIPTIONS, model=Refused(), default="billing").decide("x")


# --- router spans --------------------------------------------------------------------------------


class TopicState(TypedDict, total=False):
    question: str
    answer: str


def _topic_graph(route: Any) -> Any:
    graph = StateGraph(TopicState)
    graph.add_node("triage", lambda state: {})
    graph.add_node("billing", lambda state: {"answer": "billing"})
    graph.add_node("support", lambda state: {"answer": "support"})
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", route, ["billing", "support"])
    graph.add_edge("billing", END)
    graph.add_edge("support", END)
    return graph.compile(checkpointer=InMemorySaver())


class RouterSpanTests(TransactionTestCase):
    """Committed rows: LangGraph runs tool nodes in worker threads, on their own connections."""

    def run_graph(self, graph: Any, execution: Execution, state: dict[str, Any]) -> dict[str, Any]:
        config = {"configurable": {"thread_id": str(uuid.uuid4())},
                  "callbacks": [TraceCallbackHandler(execution.id)]}
        return graph.invoke(state, config)

    @OFFLINE
    def test_a_deep_research_run_records_each_routing_decision_with_its_scores(self) -> None:
        execution = fixture_execution(graph_name="deep_research", token_budget=1_000_000)
        graph = deep_research.workflow.compile(checkpointer=InMemorySaver())
        state = self.run_graph(graph, execution, dict(deep_research.EXAMPLE_INPUT))
        assert state["report"] and state["stopped_by"] == "supervisor"
        spans = list(Span.objects.filter(execution=execution, kind=Span.Kind.ROUTER).order_by("started_at"))
        # The supervisor answered four times: three rounds of research, then done.
        self.assertEqual([s.output for s in spans], ["search", "search", "search", "synthesizer"])
        for span in spans:
            self.assertEqual(span.name, "route_after_supervisor")
            self.assertEqual(span.attributes["chosen"], span.output)
            self.assertEqual(span.attributes["kind"], "semantic")
            self.assertEqual(span.attributes["backend"], "hashing")
            scores = span.attributes["scores"]
            self.assertEqual(set(scores), {"search", "synthesizer"})
            self.assertEqual(max(scores, key=scores.get), span.output)
            self.assertTrue(span.input.startswith(("CONTINUE", "DONE")))
            self.assertIsNotNone(span.step)
            self.assertTrue(span.task_id)
        # Under the supervisor's node run, at the supervisor's steps.
        llm_steps = set(Span.objects.filter(execution=execution, kind=Span.Kind.LLM, name="loopgate-offline")
                        .values_list("step", flat=True))
        self.assertTrue({s.step for s in spans} <= llm_steps)

    def test_an_llm_router_decision_is_a_span_and_its_call_is_charged(self) -> None:
        execution = fixture_execution(graph_name="topic", token_budget=1_000_000)
        choose = LLMRouter("triage_route", DESCRIPTIONS, default="billing",
                           model=StructuredFake(answer={"route": "support", "reason": "crash"}),
                           text=lambda state: state["question"])
        state = self.run_graph(_topic_graph(choose), execution, {"question": "the app crashes"})
        self.assertEqual(state["answer"], "support")
        span = Span.objects.get(execution=execution, kind=Span.Kind.ROUTER)
        self.assertEqual((span.name, span.output, span.input), ("triage_route", "support", "the app crashes"))
        self.assertEqual(span.attributes["scores"], {"billing": 0.0, "support": 1.0})
        self.assertEqual(span.attributes["reason"], "crash")
        self.assertEqual(span.attributes["kind"], "llm")
