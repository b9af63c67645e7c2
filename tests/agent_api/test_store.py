"""The store through LangGraph's own Python SDK (``client.store.*``, sync and async), against a live
Loopgate with a real worker: what a graph remembered, the SDK reads, and the other way round."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.models import StoreItem
from tests.agent_api.test_hitl import refused

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_graphs_memory_and_the_sdks_store_calls_are_one_store(lg) -> None:
    operator, reviewer = lg.sync("operator"), lg.sync("reviewer")
    # A run (a thread of its own) stores a memory through get_store() / the node's store argument...
    first = operator.runs.wait(None, "t_memory", input={"user": "ada", "remember": "likes tea"})
    assert first["recalled"] == []
    found = reviewer.store.search_items(["memories", "ada"])["items"]
    assert [(i["namespace"], i["value"]) for i in found] == [(["memories", "ada"], {"text": "likes tea",
                                                                                      "kind": "taste"})]
    assert found[0]["score"] is None and found[0]["created_at"] == found[0]["updated_at"]

    # ...and what a client puts, the next run (another thread) recalls.
    operator.store.put_item(["memories", "ada"], key="jazz", value={"text": "likes jazz", "kind": "taste"})
    second = operator.runs.wait(None, "t_memory", input={"user": "ada"})
    assert second["recalled"] == ["likes jazz", "likes tea"]

    item = reviewer.store.get_item(["memories", "ada"], key="jazz")
    assert item["value"] == {"text": "likes jazz", "kind": "taste"} and item["namespace"] == ["memories", "ada"]
    assert [i["key"] for i in reviewer.store.search_items(["memories"], filter={"kind": "taste"},
                                                         limit=1, offset=0)["items"]] == ["jazz"]
    operator.store.put_item(["memories", "grace", "navy"], key="rank", value={"text": "rear admiral"}, ttl=60)
    assert StoreItem.objects.get(key="rank").ttl_minutes == 60
    assert reviewer.store.list_namespaces(prefix=["memories"]) == {
        "namespaces": [["memories", "ada"], ["memories", "grace", "navy"]]}
    assert reviewer.store.list_namespaces(prefix=["memories"], max_depth=2)["namespaces"] == [
        ["memories", "ada"], ["memories", "grace"]]

    operator.store.delete_item(["memories", "ada"], key="jazz")
    status, body = refused(reviewer.store.get_item, ["memories", "ada"], key="jazz")
    assert status == 404 and "jazz" in body
    third = operator.runs.wait(None, "t_memory", input={"user": "ada"})
    assert third["recalled"] == ["likes tea"]


def test_the_async_client_reads_and_writes_the_same_items(lg) -> None:
    async def journey() -> tuple[dict, dict]:
        client = lg.aio("operator")
        try:
            await client.store.put_item(["notes"], key="a", value={"n": 1})
            await client.store.put_item(["notes"], key="b", value={"n": 5})
            got = await client.store.get_item(["notes"], key="a")
            found = await client.store.search_items(["notes"], filter={"n": {"$gt": 2}})
        finally:
            await client.aclose()
        return got, found

    got, found = asyncio.run(journey())
    assert got["value"] == {"n": 1}
    assert [i["key"] for i in found["items"]] == ["b"]


def test_roles_and_bad_input_are_refused_and_change_nothing(lg) -> None:
    operator, reviewer, outsider = lg.sync("operator"), lg.sync("reviewer"), lg.sync("outsider")
    assert refused(reviewer.store.put_item, ["m"], key="k", value={"v": 1})[0] == 403
    assert refused(reviewer.store.delete_item, ["m"], key="k")[0] == 403
    assert refused(outsider.store.search_items, ["m"])[0] == 403
    assert refused(lg.sync(None).store.search_items, ["m"])[0] in (401, 403)
    # What the SDK itself would refuse, sent anyway: a dotted label, a value that is not an object...
    for body in ({"namespace": ["a.b"], "key": "k", "value": {"v": 1}},
                 {"namespace": ["langgraph"], "key": "k", "value": {"v": 1}},
                 {"namespace": ["m"], "key": "k", "value": [1, 2]},
                 {"namespace": ["m"], "key": "k", "value": {"v": 1}, "ttl": "soon"},
                 {"namespace": "m", "key": 3, "value": {"v": 1}}):
        status, _ = refused(operator.http.put, "/store/items", json=body)
        assert status == 422, body
    status, message = refused(operator.store.search_items, ["m"], filter={"n": {"$near": 3}})
    assert status == 422 and "$near" in message
    assert not StoreItem.objects.exists()
