"""What an execution produced, for a reader who wants the result before the trace: the answer or
report the graph wrote, else its last AI message, with the graph's own outcome label if it sets one.

One rule for the execution page's Result panel and the executions list's Outcome column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# State keys graphs commonly put their result in, most specific first.
RESULT_KEYS = ("summary", "answer", "final_answer", "report", "result", "output", "response")
OUTCOME_KEYS = ("outcome", "status", "verdict")


@dataclass(frozen=True)
class Outcome:
    label: str  # the graph's own word for how it ended ("shut down"), or ""
    text: str   # the answer, report or last message, or ""
    source: str  # where it came from: the state key, or "last message"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):  # LangChain content blocks
        parts = [b.get("text", "") if isinstance(b, dict) else b for b in value]
        return " ".join(p for p in parts if isinstance(p, str)).strip()
    return ""


def _last_ai_message(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("type") in ("ai", "AIMessage", "AIMessageChunk"):
            text = _text(message.get("content"))
            if text:
                return text
    return ""


def outcome_of(state: Any) -> Outcome | None:
    """The outcome of a state (an execution's last known state), or None when there is nothing to show."""
    if not isinstance(state, dict):
        return None
    label = next((str(state[k]).replace("_", " ") for k in OUTCOME_KEYS
                  if isinstance(state.get(k), str) and 0 < len(state[k]) <= 40), "")
    for key in RESULT_KEYS:
        text = _text(state.get(key))
        if text:
            return Outcome(label, text, key)
    text = _last_ai_message(state.get("messages"))
    if text:
        return Outcome(label, text, "last message")
    reports = state.get("reports")
    if isinstance(reports, list) and reports and _text(reports[-1]):
        return Outcome(label, _text(reports[-1]), "reports")
    return Outcome(label, "", "") if label else None
