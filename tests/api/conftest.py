"""API test fixtures: the role users, each with a token, and clients that send it."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import make_role_users


@pytest.fixture
def users(db: Any) -> dict[str, Any]:
    return make_role_users()


@pytest.fixture
def tokens(users: dict[str, Any]) -> dict[str, str]:
    return {role: Token.objects.create(user=user).key for role, user in users.items()}


@pytest.fixture
def api(tokens: dict[str, str]) -> Any:
    """``api("admin")``: a client sending that role's token, as programs do."""

    def client(role: str) -> APIClient:
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Token {tokens[role]}")
        return c

    return client


def fields_of(response: Any) -> dict[str, list[str]]:
    body = response.json()
    assert set(body) == {"message", "code", "extra"}, body
    return body["extra"].get("fields", {})
