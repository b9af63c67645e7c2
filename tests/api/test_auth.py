"""Who may call the API: tokens and sessions, the same roles as the pages."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orchestrator.models import Execution


class ApiAuthenticationTests:
    def test_a_request_without_a_token_gets_401_with_a_token_challenge(self, users: Any) -> None:
        for method, url in (("get", "/api/v1/executions/"), ("post", "/api/v1/executions/"),
                            ("get", "/api/v1/graphs/"), ("get", "/api/v1/approvals/"),
                            ("post", "/api/v1/approvals/00000000-0000-0000-0000-000000000000/decide/"),
                            ("get", "/api/v1/budgets/"), ("get", "/api/schema/?format=json")):
            response = getattr(APIClient(), method)(url, {}, format="json")
            assert response.status_code == 401, url
            assert response["WWW-Authenticate"] == "Token", url
            assert response.json()["code"] == "not_authenticated", url
        assert not Execution.objects.exists()

    def test_a_wrong_or_revoked_token_gets_401(self, api: Any, tokens: dict[str, str], users: Any) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
        response = client.get("/api/v1/executions/")
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"

        assert api("operator").get("/api/v1/executions/").status_code == 200
        Token.objects.filter(user=users["operator"]).delete()
        assert api("operator").get("/api/v1/executions/").status_code == 401

    def test_a_token_of_an_inactive_user_gets_401(self, api: Any, users: Any) -> None:
        users["operator"].is_active = False
        users["operator"].save()
        assert api("operator").get("/api/v1/executions/").status_code == 401

    def test_the_browser_session_works_and_csrf_is_enforced_on_writes(self, users: Any) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(users["operator"])
        assert client.get("/api/v1/executions/").status_code == 200
        body = {"graph": "seed", "input": {}}
        response = client.post("/api/v1/executions/", body, content_type="application/json")
        assert response.status_code == 403
        assert "CSRF" in response.json()["message"]
        assert not Execution.objects.exists()

        client.get(reverse("graphs"))  # any page sets the CSRF cookie
        csrf = client.cookies["csrftoken"].value
        response = client.post("/api/v1/executions/", body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
        assert response.status_code == 202, response.json()

    def test_a_user_without_a_role_sees_nothing(self, api: Any, users: Any) -> None:
        api("admin").post("/api/v1/executions/", {"graph": "seed", "input": {}}, format="json")
        assert api("outsider").get("/api/v1/executions/").json()["count"] == 0
        assert api("outsider").get("/api/v1/graphs/").json()["count"] == 0
        response = api("outsider").post("/api/v1/executions/", {"graph": "seed", "input": {}}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"


class ApiTokenPageTests:
    def test_only_admins_open_the_tokens_page(self, users: Any, client: Client) -> None:
        for role, status in (("admin", 200), ("reviewer", 403), ("operator", 403), ("outsider", 403)):
            client.force_login(users[role])
            assert client.get(reverse("api_tokens")).status_code == status, role
            assert client.post(reverse("api_token_create"), {"username": "otto"}).status_code == (
                200 if role == "admin" else 403), role
            assert client.post(reverse("api_token_revoke", args=[users["operator"].id])).status_code == (
                302 if role == "admin" else 403), role

    def test_an_admin_makes_a_token_that_works_and_is_shown_once(self, users: Any, client: Client) -> None:
        client.force_login(users["admin"])
        response = client.post(reverse("api_token_create"), {"username": "otto"})
        assert response.status_code == 200
        key = Token.objects.get(user=users["operator"]).key
        assert key in response.content.decode()
        page = client.get(reverse("api_tokens")).content.decode()
        assert key not in page and key[:6] in page and "otto" in page

        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get("/api/v1/executions/").status_code == 200

        # A new one replaces it; revoking ends it.
        client.post(reverse("api_token_create"), {"username": "otto"})
        assert api.get("/api/v1/executions/").status_code == 401
        new = Token.objects.get(user=users["operator"]).key
        api.credentials(HTTP_AUTHORIZATION=f"Token {new}")
        assert api.get("/api/v1/executions/").status_code == 200
        response = client.post(reverse("api_token_revoke", args=[users["operator"].id]))
        assert response.status_code == 302
        assert api.get("/api/v1/executions/").status_code == 401

    def test_an_unknown_user_is_refused_on_the_form(self, users: Any, client: Client) -> None:
        client.force_login(users["admin"])
        response = client.post(reverse("api_token_create"), {"username": "nobody"})
        assert response.status_code == 422
        assert not Token.objects.exists()


class CreateApiTokenCommandTests:
    def test_it_prints_a_token_that_works_and_prints_the_same_one_again(self, users: Any) -> None:
        out = io.StringIO()
        call_command("create_api_token", "rita", stdout=out, stderr=io.StringIO())
        key = out.getvalue().strip()
        assert key == Token.objects.get(user=users["reviewer"]).key
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

    def test_an_unknown_user_is_an_error(self, db: Any) -> None:
        with pytest.raises(CommandError, match="no user named"):
            call_command("create_api_token", "nobody", stdout=io.StringIO(), stderr=io.StringIO())
