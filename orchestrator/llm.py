"""Which chat model the example graphs use: a configured provider, or the offline one.

``get_chat_model(purpose)`` is the one place the examples get a model from:

- with ``LOOPGATE_LLM_BASE_URL`` set, a ``langchain_openai.ChatOpenAI`` pointed at
  that OpenAI-compatible endpoint (hosted APIs and local servers alike), using
  ``LOOPGATE_LLM_MODEL`` and ``LOOPGATE_LLM_API_KEY``;
- with ``LOOPGATE_LLM_FACTORY`` set, whatever LangChain chat model that factory makes;
- otherwise the examples' ``OfflineChatModel`` (``orchestrator/examples/offline_model.py``):
  no network, no weights, the same answer for the same input every time, and token
  usage reported like a real provider so budgets, accounting and traces work exactly
  as they would with one.

``is_simulated()`` says which of the two is in use, for the dashboard.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from langchain_core.language_models import BaseChatModel

from orchestrator.budgets.guard import with_output_cap
from orchestrator.examples.offline_model import OFFLINE_MODEL_NAME, OfflineChatModel


def _setting(name: str) -> str:
    value = getattr(settings, name, "")
    return str(value).strip() if value else ""


def is_simulated() -> bool:
    """True when no provider is configured and the examples run on the offline model."""
    return not _setting("LOOPGATE_LLM_BASE_URL") and not _setting("LOOPGATE_LLM_FACTORY")


def _from_factory(spec: str, purpose: str) -> BaseChatModel:
    """Any LangChain chat model: ``LOOPGATE_LLM_FACTORY="package.module:make_model"``,
    called with ``purpose=`` for each agent role."""
    from django.utils.module_loading import import_string

    try:
        factory = import_string(spec.replace(":", "."))
    except ImportError as exc:
        raise ImproperlyConfigured(f"LOOPGATE_LLM_FACTORY {spec!r} cannot be imported: {exc}") from None
    model = factory(purpose=purpose)
    if not isinstance(model, BaseChatModel):
        raise ImproperlyConfigured(
            f"LOOPGATE_LLM_FACTORY {spec!r} returned a {type(model).__name__}, not a LangChain chat model."
        )
    return model


def configured_model_name() -> str:
    """The model the examples will use, as the dashboard should name it."""
    if is_simulated():
        return OFFLINE_MODEL_NAME
    if _setting("LOOPGATE_LLM_FACTORY"):
        return _setting("LOOPGATE_LLM_FACTORY")
    return _setting("LOOPGATE_LLM_MODEL")


def _budget_capped_chat_openai() -> type:
    """``ChatOpenAI`` that passes the budget's output cap (orchestrator/budgets/guard.py) with every
    call, streamed or not."""
    from langchain_openai import ChatOpenAI

    class BudgetCappedChatOpenAI(ChatOpenAI):
        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            return super()._generate(messages, stop, run_manager, **with_output_cap(run_manager, kwargs))

        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            return await super()._agenerate(messages, stop, run_manager, **with_output_cap(run_manager, kwargs))

        def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            return super()._stream(messages, stop, run_manager, **with_output_cap(run_manager, kwargs))

        def _astream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            return super()._astream(messages, stop, run_manager, **with_output_cap(run_manager, kwargs))

    return BudgetCappedChatOpenAI


def get_chat_model(purpose: str = "default") -> BaseChatModel:
    """The chat model for one agent role of an example graph.

    ``purpose`` names the role ("supervisor", "search", ...): the offline model
    scripts its answers by it, and both models carry it in their run metadata
    so traces can tell the agents' calls apart.
    """
    metadata = {"loopgate_purpose": purpose}
    factory = _setting("LOOPGATE_LLM_FACTORY")
    if factory:
        return _from_factory(factory, purpose)
    base_url = _setting("LOOPGATE_LLM_BASE_URL")
    if not base_url:
        delay = getattr(settings, "LOOPGATE_OFFLINE_TOKEN_DELAY_MS", 0) / 1000
        return OfflineChatModel(purpose=purpose, metadata=metadata, token_delay=delay)

    model = _setting("LOOPGATE_LLM_MODEL")
    if not model:
        raise ImproperlyConfigured(
            "LOOPGATE_LLM_BASE_URL is set but LOOPGATE_LLM_MODEL is empty: name the model the endpoint serves."
        )
    # Imported here: an offline installation never needs the OpenAI client.
    ChatOpenAI = _budget_capped_chat_openai()  # noqa: N806 - a class

    # Local servers (Ollama, vLLM, llama.cpp) need no key, but the OpenAI client
    # refuses to start without one; a placeholder keeps those working.
    api_key = _setting("LOOPGATE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "not-needed"
    timeout = getattr(settings, "LOOPGATE_LLM_TIMEOUT_SECONDS", 120)
    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=api_key,  # type: ignore[arg-type]  # pydantic turns the str into a SecretStr
        # Without stream_usage a streamed call reports no tokens, and budgets
        # would see nothing of it.
        stream_usage=True,
        # A hung endpoint must not hold an execution's lease forever.
        timeout=timeout,
        metadata=metadata,
    )
