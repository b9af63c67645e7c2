"""Users for the three roles and an outsider, shared by view and service tests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User

from orchestrator import roles
from orchestrator.models import Execution
from orchestrator.models.execution import owning_status


# The seed example's whole input: its plain TypedDict makes every key required.
SEED_INPUT: dict[str, Any] = {"task": "t", "reports": [], "iterations": 0, "is_complete": False}


def make_user(username: str, role: str | None = None, *, password: str = "pw-for-tests") -> User:
    user = User.objects.create_user(username=username, password=password, email=f"{username}@example.com")
    if role:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user


def make_role_users() -> dict[str, User]:
    return {
        "admin": make_user("alice", roles.ADMINS),
        "reviewer": make_user("rita", roles.REVIEWERS),
        "operator": make_user("otto", roles.OPERATORS),
        "outsider": make_user("charlie"),
    }


def fixture_execution(**fields: Any) -> Execution:
    """An execution row in any status, as a test's fixture. Real transitions go through
    ``orchestrator.services``, the one owner of the status; fixtures may skip them."""
    with owning_status():
        return Execution.objects.create(**fields)


def fixture_status(execution_id: Any, status: str, **fields: Any) -> None:
    """Put a fixture execution in ``status`` (as ``fixture_execution``; never for code under test)."""
    with owning_status():
        Execution.objects.filter(id=getattr(execution_id, "id", execution_id)).update(status=status, **fields)


def fixture_llm_call(**fields: Any) -> Any:
    """An LLM call as a run records it: its span in the trace and its charge in the core's ledger."""
    from orchestrator.models import TokenCharge
    from traces.models import Span

    span = Span.objects.create(kind=Span.Kind.LLM, **fields)
    TokenCharge.objects.create(execution_id=span.execution_id, model=span.model, step=span.step,
                               input_tokens=span.input_tokens or 0, output_tokens=span.output_tokens or 0,
                               status="refused" if (span.attributes or {}).get("refused") else "settled")
    return span
