"""The LangGraph-compatible API's harness: Daphne serving the real ASGI app, a real Celery
worker, and the real ``langgraph_sdk`` clients (sync and async) pointed at ``/langgraph``.

Fixtures:
  ``asgi_server``  (session) Daphne on a free port (tests/browser/conftest.py).
  ``worker``       (module) one ``celery worker`` process on the test database.
  ``lg``           (function) role users with tokens; ``lg.sync("operator")`` and
                   ``lg.aio("reviewer")`` are SDK clients sending that role's token as ``x-api-key``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from tests.browser.conftest import AsgiServer, asgi_server  # noqa: F401  (the session's Daphne)
from tests.factories import make_role_users
from tests.services import Proc, start_worker


WEBHOOK_SECRET = "agent-api-test-secret"  # the worker signs run webhooks with it


@pytest.fixture(scope="module")
def worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Proc]:
    with django_db_blocker.unblock():
        proc = start_worker("agentapi", concurrency=3, LOOPGATE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    yield proc
    proc.kill()


@dataclass
class LangGraphClients:
    url: str
    users: dict[str, Any]
    tokens: dict[str, str]
    _open: list[Any] = field(default_factory=list)

    def sync(self, role: str | None) -> Any:
        from langgraph_sdk import get_sync_client

        client = get_sync_client(url=self.url, api_key=self.tokens[role] if role else None)
        self._open.append(client)
        return client

    def aio(self, role: str | None) -> Any:
        from langgraph_sdk import get_client

        return get_client(url=self.url, api_key=self.tokens[role] if role else None)


@pytest.fixture
def lg(asgi_server: AsgiServer, worker: Proc, transactional_db: None, request: Any,  # noqa: F811
       monkeypatch: pytest.MonkeyPatch) -> Iterator[LangGraphClients]:
    for name in ("LANGGRAPH_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # an anonymous client must send no key at all
    users = make_role_users()
    tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
    clients = LangGraphClients(url=f"{asgi_server.url}/langgraph", users=users, tokens=tokens)
    yield clients
    for client in clients._open:
        client.close()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"--- worker ---\n{worker.output()}\n--- daphne ---\n{asgi_server.log_tail(80)}")
