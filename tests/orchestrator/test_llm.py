"""Choosing the chat model: the offline one by default, the OpenAI-compatible provider
or a factory's model when one is configured."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from langchain_openai import ChatOpenAI

from orchestrator.examples.offline_model import OFFLINE_MODEL_NAME, OfflineChatModel
from orchestrator.llm import configured_model_name, get_chat_model, is_simulated

OFFLINE = override_settings(LOOPGATE_LLM_BASE_URL="", LOOPGATE_LLM_MODEL="", LOOPGATE_LLM_API_KEY="")


# --- choosing the model --------------------------------------------------------------------


@OFFLINE
def test_offline_model_when_no_provider_is_configured() -> None:
    model = get_chat_model("supervisor")
    assert isinstance(model, OfflineChatModel)
    assert model.purpose == "supervisor"
    assert model._llm_type == "loopgate-offline"
    assert is_simulated() is True
    assert configured_model_name() == OFFLINE_MODEL_NAME


@override_settings(
    LOOPGATE_LLM_BASE_URL="http://127.0.0.1:9/v1", LOOPGATE_LLM_MODEL="llama3.1", LOOPGATE_LLM_API_KEY="sk-test"
)
def test_provider_configured_gives_chat_openai_pointed_there() -> None:
    model = get_chat_model("search")
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert model.model_name == "llama3.1"
    assert model.openai_api_key is not None and model.openai_api_key.get_secret_value() == "sk-test"
    assert model.stream_usage is True
    assert is_simulated() is False
    assert configured_model_name() == "llama3.1"


@override_settings(LOOPGATE_LLM_BASE_URL="http://127.0.0.1:9/v1", LOOPGATE_LLM_MODEL="")
def test_provider_without_a_model_name_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="LOOPGATE_LLM_MODEL"):
        get_chat_model()


class _FakeOpenAI(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        reply = json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_openai() -> Iterator[str]:
    _FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_configured_provider_is_called_at_its_base_url(fake_openai: str) -> None:
    """End to end over HTTP on localhost: the request goes to the configured
    endpoint with the key, and the provider's usage comes back as usage_metadata."""
    with override_settings(LOOPGATE_LLM_BASE_URL=fake_openai, LOOPGATE_LLM_MODEL="local-model",
                           LOOPGATE_LLM_API_KEY="sk-local"):
        answer = get_chat_model().invoke("ping")
    assert answer.content == "pong"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == 7 and answer.usage_metadata["total_tokens"] == 8
    [request] = _FakeOpenAI.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-local"
    assert request["body"]["model"] == "local-model"



def make_test_model(*, purpose: str):  # type: ignore[no-untyped-def]
    """A factory for LOOPGATE_LLM_FACTORY: any LangChain chat model will do."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    return GenericFakeChatModel(messages=iter([AIMessage(content=f"factory answer for {purpose}")]))


class LlmFactoryTests:
    def test_a_factory_setting_gives_any_langchain_chat_model(self) -> None:
        from django.test import override_settings

        from orchestrator import llm

        with override_settings(LOOPGATE_LLM_FACTORY="tests.orchestrator.test_llm:make_test_model"):
            model = llm.get_chat_model("supervisor")
            assert model.invoke("hi").content == "factory answer for supervisor"
            assert not llm.is_simulated()
        with override_settings(LOOPGATE_LLM_FACTORY="tests.orchestrator.test_llm:nowhere"):
            import pytest
            from django.core.exceptions import ImproperlyConfigured

            with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
                llm.get_chat_model()
