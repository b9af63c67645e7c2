"""Where other apps hear what happens to approvals (the Slack integration does).

An app registers a listener from its ``AppConfig.ready()``; the approvals
services call :func:`announce` after commit, once per change, with the event
and the ids of the approvals it concerns:

- ``created``: new pending approvals (an interrupt, a breakpoint, a fork held at a gate);
- ``decided``: decided by someone, whatever door the decision came in by (page, API,
  Slack, a fork that settled it);
- ``expired``: expired unanswered, and escalated;
- ``cancelled``: their execution ended or was cancelled.

Listeners get ids, never rows: they re-read what they need. They run in the
process that made the change (a web request, a worker), so they only queue work
(a Celery task) and return; one that fails never fails the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Literal
from uuid import UUID

logger = logging.getLogger(__name__)

Event = Literal["created", "decided", "expired", "cancelled"]
Listener = Callable[[str, list[UUID]], None]

_listeners: list[Listener] = []


def register_listener(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def unregister_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def announce(event: Event, approval_ids: Iterable[UUID]) -> None:
    """Tell every listener (call after commit). Failures are logged, not raised."""
    ids = list(approval_ids)
    if not ids:
        return
    for listener in _listeners:
        try:
            listener(event, ids)
        except Exception:  # noqa: BLE001 - the change is committed; only a heads-up is lost
            logger.warning("approval listener %r failed on %s of %s", listener, event, ids, exc_info=True)
