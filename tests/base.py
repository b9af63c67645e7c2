"""The base test cases: one per kind of test that acts as a user.

- ``PageTestCase``: pages through the test client, as a role: ``self.login("reviewer")``.
- ``ApiTestCase``: the REST API with a token, as programs call it: ``self.api("operator").get(...)``
  (and ``self.login`` too, for a test that checks the API against a page).

Both build the four users once per class (``tests.factories.make_role_users``: alice the admin,
rita the reviewer, otto the operator, charlie with no role, as healthchecks' hc/test.py has
alice, bob and charlie), as ``self.users[role]``; with ``fresh_registry = True`` they load the
graph registry afresh for each test.

Tests whose rows must be committed (a graph run in the test's thread, whose checkpointer writes
on its own connection; worker processes) use the same bases on ``TransactionTestCase``:
``PageTransactionTestCase`` and ``ApiTransactionTestCase``, which build the users for each test.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.test import Client, TestCase, TransactionTestCase
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orchestrator import registry
from tests.factories import make_role_users


class _Pages:
    """``self.users[role]`` and ``self.login(role)``."""

    users: dict[str, User]
    client: Client
    # True: the graph registry is loaded afresh for each test (for tests that change
    # LOOPGATE_GRAPHS or budgets the Graphs page shows). Off by default: loading it costs.
    fresh_registry = False

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        if self.fresh_registry:
            registry.reset()
            self.addCleanup(registry.reset)  # type: ignore[attr-defined]

    def login(self, role: str) -> Client:
        """Log ``self.client`` in as the user of ``role`` (admin, reviewer, operator, outsider)."""
        self.client.force_login(self.users[role])
        return self.client


class _Api(_Pages):
    """What pages have, and ``self.api(role)``: a client that sends that user's token."""

    tokens: dict[str, str]

    def api(self, role: str) -> APIClient:
        """A client sending the token of ``role``'s user, as programs do."""
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[role]}")
        return client


def make_tokens(users: dict[str, User]) -> dict[str, str]:
    """A token for each user, by role."""
    return {role: Token.objects.create(user=user).key for role, user in users.items()}


def fields_of(response: Any) -> dict[str, list[str]]:
    """The fields an API error names (``extra.fields``), after checking the one error shape."""
    body = response.json()
    assert set(body) == {"message", "code", "extra"}, body
    return body["extra"].get("fields", {})


class PageTestCase(_Pages, TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()


class ApiTestCase(_Api, TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()
        cls.tokens = make_tokens(cls.users)


class PageTransactionTestCase(_Pages, TransactionTestCase):
    def setUp(self) -> None:
        self.users = make_role_users()
        super().setUp()


class ApiTransactionTestCase(_Api, TransactionTestCase):
    def setUp(self) -> None:
        self.users = make_role_users()
        self.tokens = make_tokens(self.users)
        super().setUp()
