"""Announcements on the channel layer. Sync code announces only through here.

Messages carry ids and small facts, never HTML: the consumer re-reads through a
selector and renders the fragment itself.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def execution_group(execution_id: Any) -> str:
    return f"execution.{execution_id}"


EXECUTIONS_GROUP = "executions.list"


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001 - a dropped announcement must never fail a step; pages re-read the DB
        logger.warning("could not announce %s on %s", message.get("type"), group, exc_info=True)


def announce_step(execution_id: Any, step_id: int) -> None:
    _send(execution_group(execution_id), {"type": "trace.step", "execution_id": str(execution_id), "step_id": step_id})


def announce_execution(execution_id: Any, status: str) -> None:
    message = {"type": "trace.execution", "execution_id": str(execution_id), "status": status}
    _send(execution_group(execution_id), message)
    _send(EXECUTIONS_GROUP, message)
