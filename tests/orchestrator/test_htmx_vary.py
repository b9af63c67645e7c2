"""Pages that answer htmx with a fragment say ``Vary: HX-Request``, so caches keep both answers apart."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_role_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client() -> Client:
    client = Client()
    client.force_login(make_role_users()["operator"])
    return client


def varies(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {part.strip().lower() for part in response.get("Vary", "").split(",")}


@pytest.mark.parametrize("htmx", [False, True])
def test_the_filtered_executions_list_varies_on_hx_request(operator_client: Client, htmx: bool) -> None:
    headers = {"HX-Request": "true"} if htmx else {}
    response = operator_client.get("/executions/?status=failed", headers=headers)
    assert response.status_code == 200
    assert ("<header" in response.content.decode()) is not htmx  # a fragment for htmx, the page otherwise
    assert "hx-request" in varies(response)
    assert "cookie" in varies(response)  # what was there is kept


def test_a_page_that_never_asks_does_not_vary_on_it(operator_client: Client) -> None:
    assert "hx-request" not in varies(operator_client.get("/graphs/"))


def test_htmx_restoring_history_gets_the_whole_page(operator_client: Client) -> None:
    response = operator_client.get("/executions/?status=failed",
                                   headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<header" in response.content.decode()
    assert {"hx-request", "hx-history-restore-request"} <= varies(response)
