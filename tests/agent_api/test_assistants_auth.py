"""Assistants and authentication through the real langgraph_sdk client against a live server."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from langgraph_sdk.errors import AuthenticationError, NotFoundError, PermissionDeniedError, UnprocessableEntityError

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REVIEW_ID = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "lg_review"))


class AssistantsTests:
    def test_search_get_graph_and_schemas_of_a_registered_graph(self, lg) -> None:
        client = lg.sync("operator")
        found = client.assistants.search(graph_id="lg_review")
        assert [a["assistant_id"] for a in found] == [REVIEW_ID]
        assistant = found[0]
        assert assistant["graph_id"] == "lg_review" and assistant["version"] == 1
        assert assistant["metadata"] == {"created_by": "system"}
        assert client.assistants.count(graph_id="lg_review") == 1
        assert client.assistants.search(graph_id="no_such_graph") == []
        everything = client.assistants.search(limit=1000)
        assert {"lg_review", "lg_echo", "lg_slow"} <= {a["graph_id"] for a in everything}
        assert len(client.assistants.search(limit=2)) == 2

        # By its uuid5 (as LangGraph derives it) or by the graph's name.
        assert client.assistants.get(REVIEW_ID)["graph_id"] == "lg_review"
        assert client.assistants.get("lg_review")["assistant_id"] == REVIEW_ID
        with pytest.raises(NotFoundError):
            client.assistants.get(str(uuid.uuid4()))

        drawn = client.assistants.get_graph(REVIEW_ID)
        assert {n["id"] for n in drawn["nodes"]} == {"__start__", "write", "review", "publish", "__end__"}
        assert {"source": "write", "target": "review"} in [
            {"source": e["source"], "target": e["target"]} for e in drawn["edges"]]
        assert client.assistants.get_graph(REVIEW_ID, xray=True)["nodes"]

        schemas = client.assistants.get_schemas(REVIEW_ID)
        assert schemas["graph_id"] == "lg_review"
        assert set(schemas["input_schema"]["properties"]) >= {"topic", "draft", "log"}
        assert "published" in schemas["state_schema"]["properties"]
        assert "published" in schemas["output_schema"]["properties"]
        assert client.assistants.get_subgraphs(REVIEW_ID) == {}

    def test_creating_an_assistant_is_refused_with_a_reason(self, lg) -> None:
        with pytest.raises(UnprocessableEntityError) as caught:
            lg.sync("admin").assistants.create(graph_id="lg_review", config={})
        assert "registered graph" in str(caught.value)

    def test_the_async_client_reads_the_same(self, lg) -> None:
        async def journey() -> None:
            client = lg.aio("reviewer")
            try:
                found = await client.assistants.search(graph_id="lg_echo")
                assert found[0]["graph_id"] == "lg_echo"
                assert (await client.assistants.get(found[0]["assistant_id"]))["name"] == "lg_echo"
            finally:
                await client.aclose()

        asyncio.run(journey())


class AuthTests:
    def test_anonymous_requests_get_401(self, lg) -> None:
        with pytest.raises(AuthenticationError):
            lg.sync(None).assistants.search()
        with pytest.raises(AuthenticationError):
            lg.sync(None).threads.create()

    def test_a_bad_key_gets_401_and_the_authorization_header_works_too(self, lg) -> None:
        from langgraph_sdk import get_sync_client

        with pytest.raises(AuthenticationError):
            get_sync_client(url=lg.url, api_key="not-a-token").assistants.search()
        token = lg.tokens["operator"]
        answer = httpx.post(f"{lg.url}/assistants/search", json={}, headers={"Authorization": f"Token {token}"})
        assert answer.status_code == 200 and answer.json()

    def test_users_without_a_role_see_no_thread_and_may_not_start(self, lg) -> None:
        thread = lg.sync("operator").threads.create()
        outsider = lg.sync("outsider")
        with pytest.raises(NotFoundError):
            outsider.threads.get(thread["thread_id"])
        assert outsider.threads.search() == []
        with pytest.raises(PermissionDeniedError):
            outsider.threads.create()

    def test_crons_answer_501_naming_what_is_missing(self, lg) -> None:
        token = lg.tokens["operator"]
        for method, path in (("POST", "/runs/crons"), ("POST", "/threads/x/runs/crons")):
            answer = httpx.request(method, f"{lg.url}{path}", json={}, headers={"x-api-key": token})
            assert answer.status_code == 501, (path, answer.text)
            assert "not served by Loopgate yet" in answer.json()["detail"]
