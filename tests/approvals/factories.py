"""Executions waiting on approvals, made without a worker: the runner's hand-off called directly;
and the approvals' tasks run in this process (``tasks_inline``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from django.contrib.auth.models import User

from approvals import services
from approvals.models import Approval
from orchestrator.models import Execution
from tests.factories import fixture_execution

_ids = itertools.count(1)

HITL_VALUE = {
    "action_requests": [
        {"name": "send_email", "args": {"to": "alice@example.com", "subject": "Q3 report", "body": "Numbers attached."},
         "description": "Tool execution requires approval"}
    ],
    "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject", "respond"]}],
}

EMAIL_SCHEMA = {
    "type": "object",
    "properties": {
        "to": {"type": "string", "format": "email", "title": "To"},
        "subject": {"type": "string", "title": "Subject", "maxLength": 80},
        "body": {"type": "string", "title": "Body"},
        "urgent": {"type": "boolean", "title": "Urgent"},
        "copies": {"type": "integer", "minimum": 0, "title": "Copies"},
    },
    "required": ["to", "subject", "body"],
}

INBOX_VALUE = [
    {
        "action_request": {"action": "post_tweet", "args": {"text": "Hello"}},
        "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True},
        "description": "Post this?",
    }
]


def make_execution(*, graph_name: str = "t_mail", status: str = Execution.Status.INTERRUPTED,
                   created_by: User | None = None, state: Any = None) -> Execution:
    return fixture_execution(graph_name=graph_name, graph_version="abc123def456", status=status,
                                    created_by=created_by, state=state, token_budget=10_000, tokens_used=1_234)


def make_approval(*, value: Any = None, execution: Execution | None = None, response_schema: Any = None,
                  node: str = "agent", **execution_kwargs: Any) -> Approval:
    execution = execution or make_execution(**execution_kwargs)
    [approval] = services.approval_create_for_interrupts(
        execution_id=execution.id,
        interrupts=[{"id": f"interrupt-{next(_ids)}", "value": HITL_VALUE if value is None else value, "node": node,
                     "checkpoint_id": "cp-1", "checkpoint_ns": "", "response_schema": response_schema}],
    )
    return approval


@contextmanager
def tasks_inline(*names: str) -> Iterator[None]:
    """Run these ``approvals.tasks`` in this process when they are queued (``.delay``), retries
    included, as a worker would run them; the rest of the test sees their effects at once."""
    from approvals import tasks

    with ExitStack() as stack:
        for name in names:
            task = getattr(tasks, name)
            stack.enter_context(mock.patch.object(
                task, "delay", side_effect=lambda *args, _task=task, **kwargs: _task.apply(args=args, kwargs=kwargs)))
        yield
