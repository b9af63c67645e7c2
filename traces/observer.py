"""The traces app's view of a worker's run (``orchestrator.hooks.RunObserver``): every
event of the stream becomes node spans and steps (recorder.py), every LLM, tool and
routing call a span (callbacks.py)."""

from __future__ import annotations

from typing import Any

from orchestrator.models import Execution
from traces.callbacks import TraceCallbackHandler
from traces.recorder import TraceRecorder


class TraceObserver:
    def __init__(self, execution: Execution) -> None:
        handler = TraceCallbackHandler(execution.id)
        self.recorder = TraceRecorder(execution.id, calls=handler)
        self.callbacks: list[Any] = [handler]

    def on_event(self, event: dict[str, Any]) -> bool:
        return self.recorder.on_event(event) is not None

    def on_stop(self, error: BaseException | None) -> None:
        """Node spans that waited for a step row the run never wrote (a sibling task failed or was
        interrupted) are written now; everything else was written as it happened."""
        self.recorder.write_pending()

    @property
    def failed_node(self) -> str | None:
        return self.recorder.failed_node
