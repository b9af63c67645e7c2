from __future__ import annotations

from orchestrator.errors import LoopgateError


class NotSupported(LoopgateError):
    """A field or option of LangGraph's API that Loopgate does not serve yet (the message names it)."""

    code = "not_supported"
    status = 422


class NotImplementedYet(LoopgateError):
    """A path of LangGraph's API that Loopgate does not serve yet: streaming, the store, crons."""

    code = "not_implemented"
    status = 501
