"""Who may call the API: tokens and sessions, the same roles as the pages."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, TestCase
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orchestrator.models import Execution
from tests.base import ApiTestCase, PageTestCase
from tests.factories import SEED_INPUT, make_role_users


class ApiAuthenticationTests(ApiTestCase):
    def test_a_request_without_a_token_gets_401_with_a_token_challenge(self) -> None:
        for method, url in (("get", "/api/v1/executions/"), ("post", "/api/v1/executions/"),
                            ("get", "/api/v1/graphs/"), ("get", "/api/v1/approvals/"),
                            ("post", "/api/v1/approvals/00000000-0000-0000-0000-000000000000/decide/"),
                            ("get", "/api/v1/budgets/"), ("get", "/api/schema/?format=json")):
            response = getattr(APIClient(), method)(url, {}, format="json")
            assert response.status_code == 401, url
            assert response["WWW-Authenticate"] == "Token", url
            assert response.json()["code"] == "not_authenticated", url
        assert not Execution.objects.exists()

    def test_a_wrong_or_revoked_token_gets_401(self) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
        response = client.get("/api/v1/executions/")
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"

        assert self.api("operator").get("/api/v1/executions/").status_code == 200
        Token.objects.filter(user=self.users["operator"]).delete()
        assert self.api("operator").get("/api/v1/executions/").status_code == 401

    def test_a_token_of_an_inactive_user_gets_401(self) -> None:
        self.users["operator"].is_active = False
        self.users["operator"].save()
        assert self.api("operator").get("/api/v1/executions/").status_code == 401

    def test_the_browser_session_works_and_csrf_is_enforced_on_writes(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.users["operator"])
        assert client.get("/api/v1/executions/").status_code == 200
        body = {"graph": "seed", "input": SEED_INPUT}
        response = client.post("/api/v1/executions/", body, content_type="application/json")
        assert response.status_code == 403
        assert "CSRF" in response.json()["message"]
        assert not Execution.objects.exists()

        client.get(reverse("graphs"))  # any page sets the CSRF cookie
        csrf = client.cookies["csrftoken"].value
        response = client.post("/api/v1/executions/", body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
        assert response.status_code == 202, response.json()

    def test_a_user_without_a_role_sees_nothing(self) -> None:
        self.api("admin").post("/api/v1/executions/", {"graph": "seed", "input": SEED_INPUT}, format="json")
        assert self.api("outsider").get("/api/v1/executions/").json()["count"] == 0
        assert self.api("outsider").get("/api/v1/graphs/").json()["count"] == 0
        response = self.api("outsider").post("/api/v1/executions/", {"graph": "seed", "input": {}}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"


class ApiTokenPageTests(PageTestCase):
    def test_only_admins_open_the_tokens_page(self) -> None:
        for role, status in (("admin", 200), ("reviewer", 403), ("operator", 403), ("outsider", 403)):
            self.login(role)
            assert self.client.get(reverse("api_tokens")).status_code == status, role
            assert self.client.post(reverse("api_token_create"), {"username": "otto"}).status_code == (
                200 if role == "admin" else 403), role
            assert self.client.post(reverse("api_token_revoke", args=[self.users["operator"].id])).status_code == (
                302 if role == "admin" else 403), role

    def test_an_admin_makes_a_token_that_works_and_is_shown_once(self) -> None:
        self.login("admin")
        response = self.client.post(reverse("api_token_create"), {"username": "otto"})
        assert response.status_code == 200
        key = Token.objects.get(user=self.users["operator"]).key
        assert key in response.content.decode()
        page = self.client.get(reverse("api_tokens")).content.decode()
        assert key not in page and key[:6] in page and "otto" in page

        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get("/api/v1/executions/").status_code == 200

        # A new one replaces it; revoking ends it.
        self.client.post(reverse("api_token_create"), {"username": "otto"})
        assert api.get("/api/v1/executions/").status_code == 401
        new = Token.objects.get(user=self.users["operator"]).key
        api.credentials(HTTP_AUTHORIZATION=f"Token {new}")
        assert api.get("/api/v1/executions/").status_code == 200
        response = self.client.post(reverse("api_token_revoke", args=[self.users["operator"].id]))
        assert response.status_code == 302
        assert api.get("/api/v1/executions/").status_code == 401

    def test_an_unknown_user_is_refused_on_the_form(self) -> None:
        self.login("admin")
        response = self.client.post(reverse("api_token_create"), {"username": "nobody"})
        assert response.status_code == 422
        assert not Token.objects.exists()


class CreateApiTokenCommandTests(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()

    def test_it_prints_a_token_that_works_and_prints_the_same_one_again(self) -> None:
        out = io.StringIO()
        call_command("create_api_token", "rita", stdout=out, stderr=io.StringIO())
        key = out.getvalue().strip()
        assert key == Token.objects.get(user=self.users["reviewer"]).key
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get("/api/v1/approvals/").status_code == 200

        again = io.StringIO()
        call_command("create_api_token", "rita", stdout=again, stderr=io.StringIO())
        assert again.getvalue().strip() == key
        new = io.StringIO()
        call_command("create_api_token", "rita", "--new", stdout=new, stderr=io.StringIO())
        assert new.getvalue().strip() != key
        assert api.get("/api/v1/approvals/").status_code == 401

    def test_an_unknown_user_is_an_error(self) -> None:
        with pytest.raises(CommandError, match="no user named"):
            call_command("create_api_token", "nobody", stdout=io.StringIO(), stderr=io.StringIO())
