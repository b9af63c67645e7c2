"""A deterministic, scripted chat model for the examples: no network, no weights.

``orchestrator.llm.get_chat_model`` hands it to the example graphs (``deep_research``,
``finops``) when no provider is configured; tests use it directly. Same answer for
the same input every time, and token usage reported like a real provider so
budgets, accounting and traces work exactly as they would with one.

The script
----------
It plays a role, taken from ``purpose`` (or, failing that, from the first line of
the system prompt): ``supervisor``, ``search``, ``synthesizer``, ``communication``
or ``default``. Every answer is derived from the input messages only:

- **supervisor**: counts the numbered research notes (lines starting ``[n]``) in
  the last user message; answers ``DONE`` once there are
  ``OFFLINE_NOTES_ENOUGH`` of them, else ``CONTINUE`` with a ``Next query:`` line
  that asks about the next aspect of the ``Task:`` line.
- **search**: with tools bound and no tool result yet since the last user
  message, calls the ``search`` tool (else the first tool) with the ``Query:``
  line of that message; once results are back, writes a note summarising them.
- **synthesizer**: writes a Markdown report from the ``Task:`` line and the
  numbered notes.
- **communication**: writes an approval request to a resource owner from the
  ``key: value`` lines of the last user message.
- **default**: acknowledges the last message.

Any role calls a tool when ``tool_choice`` demands one, or when the last user
message names a bound tool. ``tool_choice="none"`` never calls one.

Token accounting: ``tokens(chars) = max(1, ceil(chars / 4))``. Input counts the
text of every message (content, plus tool-call names and JSON arguments) and
the JSON of the bound tool schemas; output counts the answer's text and its tool
calls the same way. ``usage_metadata`` carries ``input_tokens``,
``output_tokens`` and ``total_tokens``; ``response_metadata`` carries
``model_name = "loopgate-offline"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from orchestrator.budgets.guard import with_output_cap

OFFLINE_MODEL_NAME = "loopgate-offline"
# The offline supervisor's idea of "enough research": with the deep_research
# example's default of three rounds it ends the loop by its own judgement, just
# as the iteration guard would.
OFFLINE_NOTES_ENOUGH = 3
CHARS_PER_TOKEN = 4

# What the offline supervisor asks about next, in order (one aspect per round).
RESEARCH_ASPECTS = (
    "how state is checkpointed and persisted",
    "recovery after crashes, retries and resuming",
    "human-in-the-loop interrupts and approvals",
    "managed platforms and external workflow engines",
    "operational cost and trade-offs",
)

# Checked in this order, so "the supervisor of a research team" is a supervisor.
_ROLE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("supervisor", ("supervisor",)),
    ("synthesizer", ("synthes", "writer", "report")),
    ("search", ("search", "research")),
    ("communication", ("communicat", "approval", "notify", "owner")),
)


def count_tokens(chars: int) -> int:
    """The offline token rule: about four characters per token, never zero."""
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(json.dumps(block, sort_keys=True, default=str))
    return "".join(parts)


def _message_chars(message: BaseMessage) -> int:
    chars = len(_content_text(message.content))
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            chars += len(call["name"]) + len(json.dumps(call["args"], sort_keys=True, default=str))
    return chars


def _last_human(messages: Sequence[BaseMessage]) -> tuple[int, str]:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return index, _content_text(messages[index].content)
    return -1, ""


def _line_value(text: str, key: str) -> str:
    match = re.search(rf"^\s*{re.escape(key)}\s*:\s*(.+?)\s*$", text, re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else ""


def _numbered_notes(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^\s*\[\d+\]\s*(.+?)\s*$", text, re.MULTILINE)]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def _tool_name(tool: dict[str, Any]) -> str:
    return str((tool.get("function") or {}).get("name") or tool.get("name") or "")


class OfflineChatModel(BaseChatModel):
    """A deterministic, scripted chat model that needs no network and no weights.

    See the module docstring for the script and the token rule. It is a real
    ``BaseChatModel``: callbacks, ``bind_tools``, batching and async all go
    through LangChain's own machinery.
    """

    # Named ``model`` because LangChain's ``_get_ls_params`` reads that field
    # into ``ls_model_name``, which the trace callback shows as the model.
    model: str = OFFLINE_MODEL_NAME
    purpose: str = "default"
    # Seconds between two streamed tokens: a slow model, to watch an answer grow (tests, demos).
    token_delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "loopgate-offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model, "purpose": self.purpose}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        # The default derives "offlinechatmodel" from the class name.
        params["ls_provider"] = "loopgate"
        params["ls_model_name"] = self.model
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in OpenAI's format, as ChatOpenAI does, so both models see the same schemas."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        names = [_tool_name(tool) for tool in formatted]
        if isinstance(tool_choice, str) and tool_choice not in ("auto", "any", "required", "none"):
            if tool_choice not in names:
                raise ValueError(f"tool_choice {tool_choice!r} is not one of the bound tools {names}")
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=formatted, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs = with_output_cap(run_manager, kwargs)
        tools: list[dict[str, Any]] = list(kwargs.get("tools") or [])
        tool_choice = kwargs.get("tool_choice")
        role = self._role(messages)

        tool_calls = self._scripted_tool_calls(role, messages, tools, tool_choice)
        content = "" if tool_calls else self._scripted_text(role, messages)
        if stop and content:
            # Like a provider: the answer ends before the first stop sequence.
            cut = min((i for i in (content.find(s) for s in stop if s) if i >= 0), default=-1)
            if cut >= 0:
                content = content[:cut]

        input_chars = sum(_message_chars(m) for m in messages)
        if tools:
            input_chars += len(json.dumps(tools, sort_keys=True, default=str))
        output_chars = len(content) + sum(
            len(c["name"]) + len(json.dumps(c["args"], sort_keys=True, default=str)) for c in tool_calls
        )
        input_tokens, output_tokens = count_tokens(input_chars), count_tokens(output_chars)
        max_tokens = kwargs.get("max_tokens")
        cut_short = max_tokens is not None and output_tokens > int(max_tokens) and not tool_calls
        if cut_short:  # like a provider: the answer stops at max_tokens
            content = content[: int(max_tokens) * CHARS_PER_TOKEN]
            output_tokens = count_tokens(len(content))
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
        finish_reason = "tool_calls" if tool_calls else "length" if cut_short else "stop"
        message = AIMessage(
            content=content,
            tool_calls=tool_calls,
            usage_metadata=usage,  # type: ignore[arg-type]  # the TypedDict's required keys are all there
            response_metadata={"model_name": self.model, "finish_reason": finish_reason},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info={"finish_reason": finish_reason})],
            # The shape OpenAI's integration reports, for consumers that read llm_output.
            llm_output={
                "model_name": self.model,
                "token_usage": {
                    "prompt_tokens": input_tokens,
                    "completion_tokens": output_tokens,
                    "total_tokens": input_tokens + output_tokens,
                },
            },
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The same answer as ``_generate``, a word at a time (as a provider streams tokens); the
        last chunk carries the tool calls, the usage and the finish reason."""
        message = self._generate(messages, stop, run_manager, **kwargs).generations[0].message
        assert isinstance(message, AIMessage)
        words = re.findall(r"\s*\S+", str(message.content)) or [""]
        for index, word in enumerate(words):
            if index and self.token_delay:
                time.sleep(self.token_delay)
            last = index == len(words) - 1
            chunk = AIMessageChunk(
                content=word,
                tool_call_chunks=[{"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                                  for i, c in enumerate(message.tool_calls)] if last else [],
                usage_metadata=message.usage_metadata if last else None,
                response_metadata=message.response_metadata if last else {},
            )
            generation = ChatGenerationChunk(message=chunk)
            if run_manager is not None and word:
                run_manager.on_llm_new_token(word, chunk=generation)
            yield generation

    # -- the script -------------------------------------------------------------------------

    def _role(self, messages: Sequence[BaseMessage]) -> str:
        purpose = self.purpose.lower()
        for role, words in _ROLE_WORDS:
            if any(word in purpose for word in words):
                return role
        for message in messages:
            if isinstance(message, SystemMessage):
                first_line = _content_text(message.content).strip().splitlines()[:1]
                text = first_line[0].lower() if first_line else ""
                for role, words in _ROLE_WORDS:
                    if any(word in text for word in words):
                        return role
                break
        return "default"

    def _scripted_tool_calls(
        self, role: str, messages: Sequence[BaseMessage], tools: list[dict[str, Any]], tool_choice: Any
    ) -> list[ToolCall]:
        if not tools or tool_choice in ("none", False):
            return []
        index, human = _last_human(messages)
        # One tool round per question: once a result is back, answer.
        if any(isinstance(m, ToolMessage) for m in messages[index + 1 :]):
            return []
        names = [_tool_name(tool) for tool in tools]
        chosen = ""
        if isinstance(tool_choice, dict):
            chosen = str((tool_choice.get("function") or {}).get("name") or tool_choice.get("name") or "")
        elif isinstance(tool_choice, str) and tool_choice in names:
            chosen = tool_choice
        elif tool_choice in ("any", "required", True) or role == "search":
            chosen = "search" if "search" in names else names[0]
        else:
            mentioned = [n for n in names if n and re.search(rf"\b{re.escape(n)}\b", human)]
            chosen = mentioned[0] if mentioned else ""
        if chosen not in names:
            return []
        tool = tools[names.index(chosen)]
        query = _line_value(human, "Query") or _clip(human, 200)
        args = self._arguments(tool, query)
        digest = hashlib.sha256(
            f"{chosen}|{json.dumps(args, sort_keys=True)}|{len(messages)}".encode()
        ).hexdigest()[:24]
        return [ToolCall(name=chosen, args=args, id=f"call_{digest}", type="tool_call")]

    @staticmethod
    def _arguments(tool: dict[str, Any], text: str) -> dict[str, Any]:
        """Fill the tool's required parameters: text for strings, defaults or zero values otherwise."""
        schema = (tool.get("function") or {}).get("parameters") or {}
        properties: dict[str, Any] = schema.get("properties") or {}
        args: dict[str, Any] = {}
        for name in schema.get("required") or list(properties)[:1]:
            prop = properties.get(name) or {}
            kind = prop.get("type")
            if "default" in prop:
                args[name] = prop["default"]
            elif kind == "string" or kind is None:
                args[name] = text
            elif kind in ("integer", "number"):
                args[name] = 1
            elif kind == "boolean":
                args[name] = False
            elif kind == "array":
                args[name] = []
            else:
                args[name] = {}
        return args

    def _scripted_text(self, role: str, messages: Sequence[BaseMessage]) -> str:
        index, human = _last_human(messages)
        results = [m for m in messages[index + 1 :] if isinstance(m, ToolMessage)]
        if role == "supervisor":
            return self._supervisor(human)
        if role == "search":
            return self._search_note(human, results)
        if role == "synthesizer":
            return self._report(human)
        if role == "communication":
            return self._approval_request(human)
        if results:
            last = results[-1]
            return f"The tool {last.name or 'call'} returned: {_clip(_content_text(last.content), 300)}"
        if not human:
            return "Offline model (loopgate-offline): there is no user message to answer."
        return f"Offline model (loopgate-offline) received: “{_clip(human, 200)}”. This answer is simulated."

    @staticmethod
    def _supervisor(prompt: str) -> str:
        task = _line_value(prompt, "Task") or _clip(prompt, 200) or "the task"
        notes = _numbered_notes(prompt)
        if len(notes) >= OFFLINE_NOTES_ENOUGH:
            return (
                "DONE\n"
                f"Reason: {len(notes)} research notes cover the task from several angles; "
                "that is enough for the synthesizer to write the report."
            )
        aspect = RESEARCH_ASPECTS[len(notes) % len(RESEARCH_ASPECTS)]
        return (
            "CONTINUE\n"
            f"Next query: {aspect} ({task})\n"
            f"Reason: {len(notes)} research note(s) so far; at least {OFFLINE_NOTES_ENOUGH} are needed "
            "before writing the report."
        )

    @staticmethod
    def _search_note(prompt: str, results: list[ToolMessage]) -> str:
        query = _line_value(prompt, "Query") or _clip(prompt, 200)
        if not results:
            return f"On “{query}”: no search results were available, so there is nothing to add."
        findings: list[str] = []
        for result in results:
            for line in _content_text(result.content).splitlines():
                # The search tool returns "[source] Title: text" lines.
                match = re.match(r"^\s*\[([^\]]+)\]\s*([^:]+):\s*(.+)$", line)
                if match:
                    source, title, text = match.groups()
                    findings.append(f"{title.strip()}: {_first_sentence(text)} ({source.strip()})")
        if not findings:
            return f"On “{query}”: the search found nothing relevant."
        return f"On “{query}”: " + " ".join(findings[:2])

    @staticmethod
    def _report(prompt: str) -> str:
        task = _line_value(prompt, "Task") or "the task"
        notes = _numbered_notes(prompt)
        if not notes:
            return (
                f"# {task}\n\nNo research notes were gathered, so this report makes no claims.\n\n"
                "_Written by Loopgate's offline model (simulated)._"
            )
        findings = "\n".join(f"{i}. {note}" for i, note in enumerate(notes, start=1))
        return (
            f"# {task}\n\n"
            f"## Summary\n\nThe research team gathered {len(notes)} notes; each finding below cites its source.\n\n"
            f"## Findings\n\n{findings}\n\n"
            "## Recommendation\n\nCompare the options above on where the state lives, how a crashed run "
            "resumes and who approves risky steps, then start with the simplest option that meets all three.\n\n"
            "_Written by Loopgate's offline model (simulated): it restates the notes and adds no knowledge "
            "of its own. Set LOOPGATE_LLM_BASE_URL to use a real model._"
        )

    @staticmethod
    def _approval_request(prompt: str) -> str:
        def get(key: str) -> str:
            return _line_value(prompt, key)

        owner = get("owner") or "there"
        resource = get("cluster") or get("resource") or "the resource"
        text = f"Hi {owner}, the dev cluster {resource}" + (f" in {get('region')}" if get("region") else "")
        signs = []
        if get("idle_days"):
            signs.append(f"has had no jobs for {get('idle_days')} days")
        if get("avg_cpu_pct"):
            signs.append(f"averages {get('avg_cpu_pct')}% CPU")
        text += (" " + " and ".join(signs) + "." if signs else " looks idle.")
        if get("monthly_cost_usd"):
            text += f" It costs about ${get('monthly_cost_usd')} a month"
            text += f" and is part of a cost spike on {get('account')}." if get("account") else "."
        text += f" May I shut {resource} down? Approve to shut it down, reject to keep it running."
        if get("deadline") or get("manager"):
            text += " Without an answer"
            text += f" within {get('deadline')}" if get("deadline") else ""
            text += f" I will ask {get('manager')}." if get("manager") else " I will escalate."
        return text
