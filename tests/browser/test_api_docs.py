"""The interactive docs in a real browser: Swagger UI draws every operation and fetches nothing
from another host (no CDN)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import login
from tests.orchestrator import test_api_schema as api_schema_tests

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_shows_every_operation_from_local_files_only(page: Any, role_users: Any, asgi_server: Any) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    login(page, "rita")
    page.goto("/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)
    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/executions/{execution_id}/fork/" in [s.replace("\u200b", "") for s in summaries]
    assert page.locator(".opblock").count() == len(api_schema_tests.OPERATIONS)  # every operation, once
    page.screenshot(path="/tmp/loopgate-api-docs.png")
    foreign = [url for url in requested if not url.startswith(asgi_server.url) and not url.startswith("data:")]
    assert not foreign, foreign
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in url for url in requested)
