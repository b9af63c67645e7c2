"""Graphs for the budget tests, registered through LOOPGATE_GRAPHS in tests/settings.py
so that worker processes load them exactly as users' graphs are loaded.

``loop`` calls a chat model in an endless loop; every call reports exactly
1,000 tokens (600 in, 400 out), so a budget of 10,000 allows exactly ten calls.
The state counts the calls that returned (``n``), which shows whether a resumed
run continued from where it stopped or started again.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

FAKE_MODEL = "fake-1k"
INPUT_TOKENS, OUTPUT_TOKENS = 600, 400


class ThousandTokenModel(BaseChatModel):
    """Answers "thought <n>" and reports 1,000 tokens per call, like a provider would."""

    model: str = FAKE_MODEL

    @property
    def _llm_type(self) -> str:
        return "loopgate-test-1k"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        usage = {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
                 "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS}
        text = f"thought after: {messages[-1].content}"
        message = AIMessage(content=text, usage_metadata=usage,  # type: ignore[arg-type]
                            response_metadata={"model_name": self.model})
        return ChatResult(generations=[ChatGeneration(message=message)])


class LoopState(TypedDict, total=False):
    n: int
    last: str


def think(state: LoopState) -> dict[str, Any]:
    n = state.get("n", 0)
    answer = ThousandTokenModel().invoke([HumanMessage(f"step {n}")])
    return {"n": n + 1, "last": str(answer.content)}


loop = StateGraph(LoopState)
loop.add_node("think", think)
loop.add_edge(START, "think")
loop.add_edge("think", "think")
# Far above what ten or twenty calls need: only the budget stops it.
LOOPGATE_RECURSION_LIMIT = 1000
