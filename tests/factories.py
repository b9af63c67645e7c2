"""Users for the three roles and an outsider, shared by view and service tests."""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.test import TestCase

from orchestrator import roles


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


class RoleClientTestCase(TestCase):
    """A view test case with the four users (``self.users``) and ``login(role)``;
    the graph registry is reset around each test."""

    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()

    def setUp(self) -> None:
        from orchestrator import registry

        registry.reset()
        self.addCleanup(registry.reset)

    def login(self, role: str) -> None:
        self.client.force_login(self.users[role])
