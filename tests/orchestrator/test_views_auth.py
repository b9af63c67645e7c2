"""Every page but login requires a user; the three roles see what they may."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_role_users

PAGES = ["home", "approvals:inbox", "traces:executions", "graphs", "budgets"]


@pytest.fixture
def users(db):  # type: ignore[no-untyped-def]
    return make_role_users()


class AuthTests:
    @pytest.mark.django_db
    def test_every_page_but_login_redirects_anonymous_users_to_login(self, client: Client) -> None:
        for name in PAGES:
            response = client.get(reverse(name))
            assert response.status_code == 302, name
            assert response["Location"].startswith(reverse("login")), name
        assert client.get(reverse("login")).status_code == 200

    def test_logging_in_and_out(self, client: Client, users) -> None:  # type: ignore[no-untyped-def]
        response = client.post(reverse("login"), {"username": "rita", "password": "pw-for-tests"})
        assert response.status_code == 302
        assert client.get(reverse("approvals:inbox")).status_code == 200
        response = client.post(reverse("logout"))
        assert response.status_code == 302
        assert client.get(reverse("approvals:inbox")).status_code == 302

    def test_a_wrong_password_is_refused_with_a_message(self, client: Client, users) -> None:  # type: ignore[no-untyped-def]
        response = client.post(reverse("login"), {"username": "rita", "password": "nope"})
        assert response.status_code == 200
        assert "correct username and password" in response.content.decode()

    def test_reviewers_land_on_the_inbox_and_operators_on_executions(self, client: Client, users) -> None:  # type: ignore[no-untyped-def]
        client.force_login(users["reviewer"])
        assert client.get(reverse("home"))["Location"] == reverse("approvals:inbox")
        client.force_login(users["operator"])
        assert client.get(reverse("home"))["Location"] == reverse("traces:executions")

    def test_only_admins_open_the_budgets_page(self, client: Client, users) -> None:  # type: ignore[no-untyped-def]
        for role, status in (("admin", 200), ("reviewer", 403), ("operator", 403), ("outsider", 403)):
            client.force_login(users[role])
            assert client.get(reverse("budgets")).status_code == status, role

    def test_the_demo_command_creates_a_user_per_role(self, db) -> None:  # type: ignore[no-untyped-def]
        from django.contrib.auth.models import User
        from django.core.management import call_command

        from orchestrator import roles

        from django.test import override_settings

        with override_settings(DEBUG=True):  # as in scripts/run; Django's tests run with DEBUG off
            call_command("setup_demo", stdout=open("/dev/null", "w"))
            call_command("setup_demo", stdout=open("/dev/null", "w"))  # idempotent
        for username, group in (("admin", roles.ADMINS), ("reviewer", roles.REVIEWERS), ("operator", roles.OPERATORS)):
            user = User.objects.get(username=username)
            assert user.check_password("loopgate-demo")
            assert roles.user_roles(user) >= {group}
