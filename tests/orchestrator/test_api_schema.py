"""The OpenAPI schema and the interactive docs (no CDN), and Schemathesis against the schema."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.handlers.wsgi import WSGIHandler
from hypothesis import HealthCheck, settings
from tests.factories import fixture_execution, fixture_llm_call

from tests.base import ApiTestCase, PageTestCase, make_tokens

OPERATIONS = {
    ("get", "/api/v1/graphs/"),
    ("get", "/api/v1/executions/"),
    ("post", "/api/v1/executions/"),
    ("get", "/api/v1/executions/{execution_id}/"),
    ("post", "/api/v1/executions/{execution_id}/cancel/"),
    ("post", "/api/v1/executions/{execution_id}/budget/"),
    ("post", "/api/v1/executions/{execution_id}/fork/"),
    ("get", "/api/v1/executions/{execution_id}/steps/"),
    ("get", "/api/v1/executions/{execution_id}/spans/"),
    ("get", "/api/v1/approvals/"),
    ("get", "/api/v1/approvals/{approval_id}/"),
    ("post", "/api/v1/approvals/{approval_id}/decide/"),
    ("get", "/api/v1/budgets/"),
    ("put", "/api/v1/budgets/"),
    ("get", "/api/v1/graphs/{name}/findings/"),
    ("post", "/api/v1/graphs/{name}/findings/dismiss/"),
    ("post", "/api/v1/graphs/{name}/findings/restore/"),
    ("get", "/api/v1/executions/{execution_id}/findings/"),
}
WITH_BODY = {op for op in OPERATIONS if op[0] in ("post", "put")} - {("post", "/api/v1/executions/{execution_id}/cancel/")}


class SchemaTests(ApiTestCase):
    def openapi(self) -> dict[str, Any]:
        response = self.api("reviewer").get("/api/schema/?format=json")
        assert response.status_code == 200
        return response.json()

    def test_every_endpoint_is_described_with_real_bodies(self) -> None:
        openapi = self.openapi()
        assert openapi["openapi"].startswith("3.")
        found = {(method, path) for path, item in openapi["paths"].items() for method in item}
        assert found == OPERATIONS
        for method, path in OPERATIONS:
            operation = openapi["paths"][path][method]
            ok = next(code for code in operation["responses"] if code.startswith("2"))
            assert operation["responses"][ok]["content"]["application/json"]["schema"], (method, path)
            assert "401" in operation["responses"], (method, path)
            if (method, path) in WITH_BODY:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                component = openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert component["properties"], (method, path)
        start = openapi["paths"]["/api/v1/executions/"]["post"]
        assert set(start["responses"]) >= {"202", "400", "401", "403"}
        decide = openapi["paths"]["/api/v1/approvals/{approval_id}/decide/"]["post"]
        assert set(decide["responses"]) >= {"200", "400", "401", "403", "404", "409"}
        assert {"tokenAuth", "cookieAuth"} <= set(openapi["components"]["securitySchemes"])

    def test_schemathesis_checks_exactly_the_schema_that_is_served(self) -> None:
        import json

        assert self.openapi() == json.loads(json.dumps(_openapi_document(), default=str))


class ApiDocsPageTests(PageTestCase):
    def test_the_docs_page_loads_swagger_ui_from_our_own_static_files(self) -> None:
        assert self.client.get("/api/docs/")["Location"].startswith("/login/")
        response = self.login("reviewer").get("/api/docs/")
        assert response.status_code == 200
        html = response.content.decode()
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        assert any("swagger-ui-bundle" in url for url in urls), urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            if url.startswith("/static/"):
                assert finders.find(url.removeprefix("/static/").split("?")[0]), url
        assert "cdn" not in html.lower() and "https://" not in html
        assert '<a href="/">← Back to Loopgate</a>' in html  # a way back to the app
        assert "/api/schema/" in html


@pytest.fixture
def wsgi_app(db: Any) -> Any:
    """Django as a WSGI app on the test's database connection: as Django's test client does, the
    signal that closes connections after each request is off (it would close the test's own)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _openapi_document() -> dict[str, Any]:
    """The schema /api/schema/ serves, made at collection time (no request, no database)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(_openapi_document())
schema.app = WSGIHandler()


# Schemathesis generates the cases of one pytest function, so this test takes its users
# (tests/conftest.py) and tokens as fixtures, made by the same helpers as the base test cases.
@pytest.fixture
def tokens(users: dict[str, Any]) -> dict[str, str]:
    return make_tokens(users)


@pytest.fixture
def rows(users: Any) -> None:
    """Something in every list, so that real rows are checked against the schema too."""
    from django.utils import timezone

    from approvals import services as approval_services
    from orchestrator.models import Execution
    from traces.models import Span, Step

    now = timezone.now()
    done = fixture_execution(graph_name="finops", graph_version="abc123def456", status="succeeded",
                                    state={"account": "acme-prod", "outcome": "shut_down"}, tokens_used=120,
                                    token_budget=1000, created_by=users["operator"], started_at=now, finished_at=now)
    fixture_execution(graph_name="seed", status="failed", parent=done, forked_from_checkpoint="cp-1",
                             error={"type": "ValueError", "message": "boom", "node": "work"})
    waiting = fixture_execution(graph_name="mailer", status="interrupted")
    approval_services.approval_create_for_interrupts(execution_id=waiting.id, interrupts=[{
        "id": "i-1", "value": {"action_requests": [{"name": "send", "args": {"to": "a@example.com"}}],
                               "review_configs": [{"action_name": "send", "allowed_decisions": ["approve", "edit"]}]},
        "node": "review", "checkpoint_id": "cp-2", "checkpoint_ns": "", "response_schema": None}])
    Step.objects.create(execution=done, step=0, nodes=["monitor"], checkpoint_id="cp-1", update={"monitor": {}},
                        diff=[{"op": "add", "path": "spike", "new": 1}], tokens=12, started_at=now, finished_at=now)
    fixture_llm_call(execution=done, name="communicate", model="loopgate-offline", step=2,
                        input={"messages": []}, output={"text": "hi"}, input_tokens=10, output_tokens=2,
                        started_at=now, ended_at=now)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    case: Any, wsgi_app: Any, tokens: dict[str, str], rows: None
) -> None:
    # Not positive_data_acceptance: a request can fit the schema and still be refused by
    # the domain (an input the graph's own state schema rejects, a decision the action
    # does not allow), and that 400 is right.
    case.call_and_validate(headers={"Authorization": f"Token {tokens['admin']}"},
                           excluded_checks=[schemathesis.checks.positive_data_acceptance])
