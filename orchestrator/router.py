"""Routers for conditional edges: pick the next node from what the task says.

Two kinds, both usable as the path function of ``add_conditional_edges``:

- ``SemanticRouter``: embeds the routed text (by default the state's latest
  message) and compares it with example phrases per route; the route whose best
  example is most similar (cosine) wins. The embeddings come from
  ``get_embeddings()``:

  1. an OpenAI-compatible ``/embeddings`` endpoint when ``LOOPGATE_LLM_BASE_URL``
     is set (``LOOPGATE_EMBEDDINGS_MODEL``);
  2. else a local sentence-transformers model, only when the package is
     installed *and* the model is already on disk (``LOOPGATE_EMBEDDINGS_LOCAL_MODEL``;
     nothing is ever downloaded);
  3. else ``HashingEmbeddings``: deterministic and offline, but lexical, not
     semantic (see its docstring).

  ``LOOPGATE_EMBEDDINGS`` forces one (``endpoint``, ``local``, ``hashing``); the
  default ``auto`` takes the first available. If the chosen backend fails during
  a run, the router falls back to hashing for that decision and says so in its span.

- ``LLMRouter``: asks a chat model to choose with structured output
  (``model.with_structured_output``); a model that cannot, or answers with no
  valid route, gets the router's default route, and the span says why.

Each decision is dispatched as the LangChain custom event ``loopgate_route``;
the runner's callback (``orchestrator.budgets``) records it as a ``router``
span with the scores, the chosen route and the backend. Called outside a run
(a plain function call), it simply decides.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables.config import ensure_config, get_callback_manager_for_config
from langgraph.errors import GraphBubbleUp

logger = logging.getLogger(__name__)

ROUTE_EVENT = "loopgate_route"

# -- embeddings --------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
# Words too common to tell routes apart.
_STOP_WORDS = frozenset(
    "a an and are as at be been but by for from has have i in is it its of on or so that the this to was "
    "were will with".split()
)


class HashingEmbeddings(Embeddings):
    """Deterministic offline vectors: hashed words and character trigrams, L2-normalised.

    This is lexical, not semantic: two texts are similar when they share words
    or pieces of words ("checkpoint", "checkpointed"), never because they mean
    the same thing ("stop" and "halt" are strangers). It needs no network and
    no weights and gives the same vector for the same text on every machine,
    which is what the offline examples and the tests need. Write route examples
    with the words the routed texts use.
    """

    def __init__(self, dimensions: int = 512) -> None:
        self.dimensions = dimensions

    def _features(self, text: str) -> dict[str, float]:
        """Each word, and each trigram of ``<word>`` at half a word's weight; counts damped by log."""
        counts: dict[str, int] = {}
        for word in _WORD.findall(text.lower()):
            if word in _STOP_WORDS:
                continue
            counts[f"w:{word}"] = counts.get(f"w:{word}", 0) + 1
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                counts[f"c:{padded[i:i + 3]}"] = counts.get(f"c:{padded[i:i + 3]}", 0) + 1
        return {f: (1.0 if f.startswith("w:") else 0.5) * (1.0 + math.log(n)) for f, n in counts.items()}

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for feature, weight in self._features(text).items():
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "big") % self.dimensions
            vector[index] += weight if digest[4] & 1 else -weight  # a signed hash keeps collisions unbiased
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


class LocalEmbeddings(Embeddings):
    """A sentence-transformers model already on this machine (never downloaded)."""

    def __init__(self, model_name: str) -> None:
        from sentence_transformers import SentenceTransformer  # optional: not a Loopgate dependency

        self.model_name = model_name
        self._model = SentenceTransformer(model_name, local_files_only=True)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, row)) for row in self._model.encode(list(texts), normalize_embeddings=True)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _setting(name: str, default: str = "") -> str:
    value = getattr(settings, name, default)
    return str(value).strip() if value else default


def _local_model_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("sentence_transformers") is not None


_cache: dict[tuple[str, ...], tuple[Embeddings, str]] = {}
_cache_lock = threading.Lock()


def get_embeddings() -> tuple[Embeddings, str]:
    """The embeddings backend for semantic routing and its name for the trace (see the module docstring)."""
    mode = _setting("LOOPGATE_EMBEDDINGS", "auto").lower()
    base_url = _setting("LOOPGATE_LLM_BASE_URL")
    key = (mode, base_url, _setting("LOOPGATE_EMBEDDINGS_MODEL"), _setting("LOOPGATE_EMBEDDINGS_LOCAL_MODEL"))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _build_embeddings(mode, base_url)
        return _cache[key]


def _build_embeddings(mode: str, base_url: str) -> tuple[Embeddings, str]:
    if mode in ("endpoint", "auto") and base_url:
        from langchain_openai import OpenAIEmbeddings  # imported here: offline installs never need it

        model = _setting("LOOPGATE_EMBEDDINGS_MODEL", "text-embedding-3-small")
        api_key = _setting("LOOPGATE_LLM_API_KEY") or "not-needed"
        embeddings = OpenAIEmbeddings(
            base_url=base_url, model=model, api_key=api_key,  # type: ignore[arg-type]
            # Local servers and other providers do not take OpenAI's pre-tokenised input.
            check_embedding_ctx_length=False,
            timeout=getattr(settings, "LOOPGATE_LLM_TIMEOUT_SECONDS", 120),
        )
        return embeddings, f"endpoint:{model}"
    if mode == "endpoint":
        logger.warning("LOOPGATE_EMBEDDINGS=endpoint but LOOPGATE_LLM_BASE_URL is empty; routing lexically")
    if mode in ("local", "auto") and _local_model_available():
        model = _setting("LOOPGATE_EMBEDDINGS_LOCAL_MODEL", "all-MiniLM-L6-v2")
        try:
            return LocalEmbeddings(model), f"local:{model}"
        except Exception as exc:  # noqa: BLE001 - a model not on disk means the next backend, said in the log
            logger.warning("local embedding model %s is not available (%s); routing lexically", model, exc)
    return HashingEmbeddings(), "hashing"


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


# -- decisions ---------------------------------------------------------------------------------


@dataclass
class RouteDecision:
    route: str
    scores: dict[str, float]
    backend: str
    text: str
    fallback: str = ""  # why the router did not decide the normal way, if it did not
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _latest_message_text(state: Any) -> str:
    messages = state.get("messages") if isinstance(state, Mapping) else getattr(state, "messages", None)
    for message in reversed(messages or []):
        content = getattr(message, "content", None)
        if content is None and isinstance(message, Mapping):
            content = message.get("content")
        if isinstance(content, list):
            content = " ".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
        if content:
            return str(content)
    return ""


def _record(router: str, kind: str, decision: RouteDecision, started: float) -> None:
    payload = {
        "router": router,
        "kind": kind,
        "chosen": decision.route,
        "scores": decision.scores,
        "backend": decision.backend,
        "text": decision.text[:2000],
        "elapsed_ms": round((time.monotonic() - started) * 1000, 3),
    }
    if decision.fallback:
        payload["fallback"] = decision.fallback
    if decision.reason:
        payload["reason"] = decision.reason
    payload.update(decision.extra)
    # Outside a LangChain run (a plain function call) there is no trace to attach the span to.
    if get_callback_manager_for_config(ensure_config()).parent_run_id is not None:
        dispatch_custom_event(ROUTE_EVENT, payload)


class SemanticRouter:
    """Choose a route by the similarity of a text to example phrases per route.

    ``routes`` maps each route (the value the path function returns) to its
    examples. ``text`` takes the state and returns what to route on (default:
    the latest message's text). A route's score is the cosine similarity of the
    text to its closest example; the best score wins, ties go to the route
    listed first. Below ``threshold`` (or with no text) ``default`` is chosen,
    when there is one.
    """

    kind = "semantic"

    def __init__(
        self,
        name: str,
        routes: Mapping[str, Sequence[str]],
        *,
        text: Callable[[Any], str] | None = None,
        default: str | None = None,
        threshold: float = 0.0,
        embeddings: Embeddings | None = None,
    ) -> None:
        if not routes or any(not examples for examples in routes.values()):
            raise ValueError("Every route needs at least one example phrase.")
        if default is not None and default not in routes:
            raise ValueError(f"The default route {default!r} is not one of {list(routes)}.")
        self.name = name
        self.routes = {route: list(examples) for route, examples in routes.items()}
        self.text = text or _latest_message_text
        self.default = default
        self.threshold = threshold
        self._fixed = (embeddings, type(embeddings).__name__) if embeddings is not None else None
        # id(backend) -> (backend, vectors per route); the backend is kept so its id stays unique.
        self._examples: dict[int, tuple[Embeddings, dict[str, list[list[float]]]]] = {}
        self._lock = threading.Lock()

    def _backend(self) -> tuple[Embeddings, str]:
        return self._fixed if self._fixed is not None else get_embeddings()

    def _example_vectors(self, embeddings: Embeddings) -> dict[str, list[list[float]]]:
        # Keyed by the backend object: examples are embedded once per backend, not per decision.
        with self._lock:
            if id(embeddings) not in self._examples:
                flat = [(route, example) for route, examples in self.routes.items() for example in examples]
                vectors = embeddings.embed_documents([example for _, example in flat])
                per_route: dict[str, list[list[float]]] = {route: [] for route in self.routes}
                for (route, _), vector in zip(flat, vectors):
                    per_route[route].append(vector)
                self._examples[id(embeddings)] = (embeddings, per_route)
            return self._examples[id(embeddings)][1]

    def _scores(self, embeddings: Embeddings, text: str) -> dict[str, float]:
        examples = self._example_vectors(embeddings)
        query = embeddings.embed_query(text)
        return {route: round(max(cosine(query, v) for v in vectors), 4) for route, vectors in examples.items()}

    def decide(self, text: str) -> RouteDecision:
        embeddings, backend = self._backend()
        fallback = ""
        if not text.strip():
            route = self.default or next(iter(self.routes))
            return RouteDecision(route, {r: 0.0 for r in self.routes}, backend, text, fallback="no text to route on")
        try:
            scores = self._scores(embeddings, text)
        except Exception as exc:  # noqa: BLE001 - an unreachable endpoint must not fail the run: route lexically
            logger.warning("router %s: %s failed (%s); routing lexically", self.name, backend, exc)
            fallback = f"{backend} failed ({type(exc).__name__}: {exc}); used hashing"
            embeddings, backend = _hashing, "hashing"
            scores = self._scores(embeddings, text)
        best = max(scores.values())
        route = next(r for r, s in scores.items() if s == best)
        if best < self.threshold and self.default is not None:
            route = self.default
            fallback = fallback or f"best score {best} below the threshold {self.threshold}"
        return RouteDecision(route, scores, backend, text, fallback=fallback)

    def __call__(self, state: Any) -> str:
        started = time.monotonic()
        decision = self.decide(self.text(state))
        _record(self.name, self.kind, decision, started)
        return decision.route


_hashing = HashingEmbeddings()


class LLMRouter:
    """Choose a route by asking a chat model, with structured output.

    ``routes`` maps each route to a description the model reads. ``model`` is a
    chat model or a function returning one (called per decision, so settings
    changes apply). The model answers ``{"route", "reason", "confidence"}``; a
    model without structured output, an error or an answer naming no route
    gives ``default`` and the span records why. The model call itself is an
    ordinary LLM call: traced, charged and under the execution's budget.
    """

    kind = "llm"

    def __init__(
        self,
        name: str,
        routes: Mapping[str, str],
        *,
        model: BaseChatModel | Callable[[], BaseChatModel],
        default: str,
        text: Callable[[Any], str] | None = None,
        instructions: str = "",
    ) -> None:
        if default not in routes:
            raise ValueError(f"The default route {default!r} is not one of {list(routes)}.")
        self.name = name
        self.routes = dict(routes)
        self.model = model
        self.default = default
        self.text = text or _latest_message_text
        self.instructions = instructions or "Choose where the task goes next."

    def schema(self) -> dict[str, Any]:
        return {
            "title": "choose_route",
            "description": "Choose the next step for the task.",
            "type": "object",
            "properties": {
                "route": {"type": "string", "enum": list(self.routes), "description": "The chosen route."},
                "reason": {"type": "string", "description": "Why, in one sentence."},
                "confidence": {"type": "number", "description": "How sure, from 0 to 1."},
            },
            "required": ["route", "reason"],
        }

    def _messages(self, text: str) -> list[BaseMessage]:
        listed = "\n".join(f"- {route}: {description}" for route, description in self.routes.items())
        return [SystemMessage(f"{self.instructions}\nRoutes:\n{listed}"), HumanMessage(text)]

    def decide(self, text: str) -> RouteDecision:
        model = self.model if isinstance(self.model, BaseChatModel) else self.model()
        backend = f"llm:{getattr(model, 'model_name', None) or getattr(model, 'model', None) or type(model).__name__}"
        try:
            structured = model.with_structured_output(self.schema())
            answer = structured.invoke(self._messages(text))
        except NotImplementedError:
            return self._fallback(text, backend, "the model has no structured output")
        except Exception as exc:  # noqa: BLE001 - routing must go on; budget refusals still stop the run
            from orchestrator.errors import LoopgateError

            if isinstance(exc, (LoopgateError, GraphBubbleUp)):
                raise
            return self._fallback(text, backend, f"{type(exc).__name__}: {exc}")
        if hasattr(answer, "model_dump"):
            answer = answer.model_dump()
        route = answer.get("route") if isinstance(answer, Mapping) else None
        if route not in self.routes:
            return self._fallback(text, backend, f"the model answered no valid route ({str(route)[:80]!r})")
        confidence = answer.get("confidence")
        score = float(confidence) if isinstance(confidence, (int, float)) and 0 <= confidence <= 1 else 1.0
        scores = {r: (round(score, 4) if r == route else 0.0) for r in self.routes}
        return RouteDecision(str(route), scores, backend, text, reason=str(answer.get("reason") or "")[:500])

    def _fallback(self, text: str, backend: str, why: str) -> RouteDecision:
        logger.info("router %s fell back to %s: %s", self.name, self.default, why)
        scores = {r: 0.0 for r in self.routes}
        return RouteDecision(self.default, scores, backend, text, fallback=f"{why}; chose the default route")

    def __call__(self, state: Any) -> str:
        started = time.monotonic()
        decision = self.decide(self.text(state))
        _record(self.name, self.kind, decision, started)
        return decision.route
