"""Every page but login requires a user; the three roles see what they may."""

from __future__ import annotations

import io

from django.urls import reverse

from tests.base import PageTestCase

PAGES = ["home", "approvals:inbox", "traces:executions", "graphs", "budgets"]


class AuthTests(PageTestCase):
    def test_every_page_but_login_redirects_anonymous_users_to_login(self) -> None:
        for name in PAGES:
            response = self.client.get(reverse(name))
            assert response.status_code == 302, name
            assert response["Location"].startswith(reverse("login")), name
        assert self.client.get(reverse("login")).status_code == 200

    def test_logging_in_and_out(self) -> None:
        response = self.client.post(reverse("login"), {"username": "rita", "password": "pw-for-tests"})
        assert response.status_code == 302
        assert self.client.get(reverse("approvals:inbox")).status_code == 200
        response = self.client.post(reverse("logout"))
        assert response.status_code == 302
        assert self.client.get(reverse("approvals:inbox")).status_code == 302

    def test_a_wrong_password_is_refused_with_a_message(self) -> None:
        response = self.client.post(reverse("login"), {"username": "rita", "password": "nope"})
        assert response.status_code == 200
        assert "correct username and password" in response.content.decode()

    def test_reviewers_land_on_the_inbox_and_operators_on_executions(self) -> None:
        self.login("reviewer")
        assert self.client.get(reverse("home"))["Location"] == reverse("approvals:inbox")
        self.login("operator")
        assert self.client.get(reverse("home"))["Location"] == reverse("traces:executions")

    def test_only_admins_open_the_budgets_page(self) -> None:
        for role, status in (("admin", 200), ("reviewer", 403), ("operator", 403), ("outsider", 403)):
            self.login(role)
            assert self.client.get(reverse("budgets")).status_code == status, role

    def test_a_refused_page_has_the_apps_layout_and_its_reason_and_logs_one_line(self) -> None:
        self.login("reviewer")
        with self.assertLogs("django.request", level="WARNING") as logs:
            response = self.client.get(reverse("budgets"))
        self.assertContains(response, "Only admins may open this page.", status_code=403)
        self.assertContains(response, 'class="mainnav"', status_code=403)  # the navigation is there
        self.assertContains(response, "reviewer", status_code=403)
        self.assertEqual([(r.getMessage(), r.exc_info) for r in logs.records],
                         [("Forbidden (Only admins may open this page.): /budgets/", None)])

    def test_a_refusal_is_printed_once_by_the_servers_logging_in_debug_too(self) -> None:
        # Configured as the server configures it (Django's defaults, then ours), with a fresh stderr:
        # Django's own 'django' console handler would print every request warning a second time in DEBUG.
        import contextlib
        import io
        import logging

        from django.conf import settings
        from django.utils.log import configure_logging

        err = io.StringIO()
        try:
            with self.settings(DEBUG=True), contextlib.redirect_stderr(err):
                configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
                logging.getLogger("django.request").warning("Forbidden (%s): %s", "Only admins may open this page.",
                                                            "/budgets/")
        finally:
            configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert lines[0].endswith("Forbidden (Only admins may open this page.): /budgets/")

    def test_a_missing_page_has_the_apps_layout(self) -> None:
        self.login("operator")
        response = self.client.get("/executions/00000000-0000-0000-0000-000000000000/")
        self.assertContains(response, "Not found", status_code=404)
        self.assertContains(response, 'class="mainnav"', status_code=404)

    def test_the_demo_command_creates_a_user_per_role(self) -> None:
        from django.contrib.auth.models import User
        from django.core.management import call_command

        from orchestrator import roles

        from django.test import override_settings

        with override_settings(DEBUG=True):  # as in scripts/run; Django's tests run with DEBUG off
            first = io.StringIO()
            call_command("setup_demo", stdout=first)
            assert "Demo users ready" in first.getvalue()
            for username in ("admin", "reviewer", "operator"):
                assert f"{username:<9} / loopgate-demo" in first.getvalue()
            users_before = sorted(User.objects.values_list("id", "username"))
            assert {"admin", "operator", "reviewer"} <= {name for _id, name in users_before}
            reviewer = User.objects.get(username="reviewer")
            reviewer.set_password("changed-since")  # a password someone changed is kept on a rerun
            reviewer.save()
            call_command("setup_demo", stdout=io.StringIO())  # idempotent: nothing new, nothing reset
        assert sorted(User.objects.values_list("id", "username")) == users_before
        assert User.objects.get(username="reviewer").check_password("changed-since")
        for username, group in (("admin", roles.ADMINS), ("operator", roles.OPERATORS)):
            user = User.objects.get(username=username)
            assert user.check_password("loopgate-demo")
            assert roles.user_roles(user) >= {group}
            assert user.groups.count() == 1
        assert roles.user_roles(User.objects.get(username="reviewer")) >= {roles.REVIEWERS}
