"""DjangoStore, LangGraph's BaseStore on Loopgate's tables, on Postgres and on SQLite.

LangGraph ships no conformance suite for stores (only for checkpointers), so
besides the behaviour its docs promise, the last tests replay one sequence of
operations on LangGraph's own ``InMemoryStore`` and on ours and compare what
both answer.
"""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import (
    BaseStore, GetOp, InvalidNamespaceError, ListNamespacesOp, MatchCondition, PutOp, SearchOp,
)
from langgraph.store.memory import InMemoryStore
from typing_extensions import TypedDict

from orchestrator.models import StoreItem, StoreVector
from orchestrator.registry import compile_graph
from orchestrator.router import HashingEmbeddings
from orchestrator.store import DjangoStore, InvalidStoreValue

ALIASES = ("default", "sqlite")

pytestmark = pytest.mark.django_db(databases=["default", "sqlite"])


@pytest.fixture(params=ALIASES)
def store(request: pytest.FixtureRequest) -> DjangoStore:
    return DjangoStore(request.param)


def semantic(alias: str, **index: Any) -> DjangoStore:
    return DjangoStore(alias, index={"dims": 512, "embed": HashingEmbeddings(), **index})  # type: ignore[typeddict-item]


def rows(store: DjangoStore) -> Any:
    return StoreItem.objects.using(store.using)


# -- items ---------------------------------------------------------------------------------------------


def test_an_item_put_is_got_back_with_its_namespace_and_times(store: DjangoStore) -> None:
    store.put(("users", "u1"), "prefs", {"theme": "dark", "langs": ["en", "fr"], "n": 1.5})
    item = store.get(("users", "u1"), "prefs")
    assert item is not None
    assert (item.namespace, item.key, item.value) == (("users", "u1"), "prefs", {"theme": "dark", "langs": ["en", "fr"],
                                                                                  "n": 1.5})
    assert item.created_at == item.updated_at and item.created_at.tzinfo is not None
    assert store.get(("users", "u1"), "other") is None
    assert store.get(("users",), "prefs") is None


def test_a_second_put_replaces_the_value_and_keeps_the_creation_time(store: DjangoStore) -> None:
    store.put(("users", "u1"), "prefs", {"theme": "dark"})
    first = store.get(("users", "u1"), "prefs")
    store.put(("users", "u1"), "prefs", {"theme": "light"})
    second = store.get(("users", "u1"), "prefs")
    assert first is not None and second is not None
    assert second.value == {"theme": "light"}
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert rows(store).count() == 1


def test_delete_removes_the_item_and_only_it(store: DjangoStore) -> None:
    store.put(("a",), "k1", {"v": 1})
    store.put(("a",), "k2", {"v": 2})
    store.delete(("a",), "k1")
    store.delete(("a",), "missing")
    assert store.get(("a",), "k1") is None
    assert store.get(("a",), "k2") is not None


@pytest.mark.parametrize("namespace", [(), ("langgraph", "x"), ("a.b",), ("",), ("a", 1)])
def test_a_bad_namespace_is_refused(store: DjangoStore, namespace: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(namespace, "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(namespace, "k", {"v": 1})])
    assert not rows(store).exists()


@pytest.mark.parametrize("value", [["a list"], "text", {"nan": float("nan")}, {"obj": object()}, {1: "int key"},
                                   {"nul": "a\x00b"}])
def test_a_bad_value_refuses_the_whole_batch_and_writes_nothing(store: DjangoStore, value: Any) -> None:
    with pytest.raises(InvalidStoreValue):
        store.batch([PutOp(("ok",), "good", {"v": 1}), PutOp(("ok",), "bad", value)])
    assert not rows(store).exists()


def test_bad_keys_ttls_filters_and_pages_are_refused(store: DjangoStore) -> None:
    for op in (PutOp(("a",), "", {"v": 1}), PutOp(("a",), "k", {"v": 1}, ttl=-1),
               SearchOp(("a",), filter={"n": {"$near": 1}}), SearchOp(("a",), filter={"n": {"$gt": "x"}}),
               SearchOp(("a",), limit=-1), ListNamespacesOp(offset=-2), ListNamespacesOp(max_depth=0)):
        with pytest.raises(InvalidStoreValue):
            store.batch([op])
    assert not rows(store).exists()


def test_a_batch_reads_before_it_writes_and_the_last_put_of_a_key_wins(store: DjangoStore) -> None:
    store.put(("a",), "k", {"v": "old"})
    results = store.batch([
        PutOp(("a",), "k", {"v": "new"}),
        GetOp(("a",), "k"),
        PutOp(("a",), "k2", {"v": 1}),
        PutOp(("a",), "k2", None),
        PutOp(("a",), "k3", {"v": 1}),
        PutOp(("a",), "k3", {"v": 3}),
        SearchOp(("a",)),
        ListNamespacesOp(),
    ])
    assert results[0] is None
    assert results[1] is not None and results[1].value == {"v": "old"}
    assert [item.key for item in results[6]] == ["k"]
    assert results[7] == [("a",)]
    assert store.get(("a",), "k").value == {"v": "new"}  # type: ignore[union-attr]
    assert store.get(("a",), "k2") is None
    assert store.get(("a",), "k3").value == {"v": 3}  # type: ignore[union-attr]


# -- search --------------------------------------------------------------------------------------------


def test_search_takes_a_namespace_prefix_label_by_label_and_case_matters(store: DjangoStore) -> None:
    store.put(("docs", "a"), "1", {"v": 1})
    store.put(("docs", "ab"), "2", {"v": 2})
    store.put(("docs",), "3", {"v": 3})
    store.put(("Docs", "a"), "4", {"v": 4})
    store.put(("docs_x",), "5", {"v": 5})
    assert {i.key for i in store.search(("docs", "a"))} == {"1"}
    assert {i.key for i in store.search(("docs",))} == {"1", "2", "3"}
    assert {i.key for i in store.search(("Docs",))} == {"4"}
    assert {i.key for i in store.search(())} == {"1", "2", "3", "4", "5"}


def test_search_without_a_query_lists_the_latest_updated_first_with_limit_and_offset(store: DjangoStore) -> None:
    for n in range(5):
        store.put(("log",), f"k{n}", {"n": n})
    store.put(("log",), "k1", {"n": 10})
    found = store.search(("log",), limit=10)
    assert [i.key for i in found] == ["k1", "k4", "k3", "k2", "k0"]
    assert all(i.score is None for i in found)
    assert [i.key for i in store.search(("log",), limit=2, offset=1)] == ["k4", "k3"]
    assert store.search(("log",), limit=2, offset=10) == []


def test_search_filters_on_values_with_operators_numbers_compared_as_numbers(store: DjangoStore) -> None:
    store.put(("p",), "a", {"kind": "report", "score": 9, "tags": ["x", "y"], "meta": {"lang": "en", "v": 1}})
    store.put(("p",), "b", {"kind": "report", "score": 10, "tags": ["x"], "meta": {"lang": "fr"}})
    store.put(("p",), "c", {"kind": "note", "score": 3.5, "done": True})
    store.put(("p",), "d", {"kind": "note", "score": "11", "done": 1})

    def keys(**filter: Any) -> set[str]:
        return {i.key for i in store.search(("p",), filter=filter, limit=50)}

    assert keys(kind="report") == {"a", "b"}
    assert keys(score={"$gt": 9}) == {"b"}  # 10 > 9 (as text "10" < "9"); "11" is not a number
    assert keys(score={"$gte": 3.5, "$lt": 10}) == {"a", "c"}
    assert keys(kind={"$ne": "report"}) == {"c", "d"}
    assert keys(kind={"$eq": "note"}, done=True) == {"c"}  # true is not 1
    assert keys(tags=["x"]) == {"b"}
    assert keys(meta={"lang": "en"}) == {"a"}
    assert keys(missing="x") == set()


def test_a_filtered_search_pages_over_the_matching_items_only(store: DjangoStore) -> None:
    for n in range(30):
        store.put(("m",), f"k{n:02}", {"even": n % 2 == 0, "n": n})
    found = store.search(("m",), filter={"even": True}, limit=4, offset=2)
    assert [i.value["n"] for i in found] == [24, 22, 20, 18]


# -- namespaces ----------------------------------------------------------------------------------------


def test_list_namespaces_matches_prefixes_suffixes_wildcards_and_truncates_to_a_depth(store: DjangoStore) -> None:
    for namespace in [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "x", "c"), ("z",), ("a", "b", "c")]:
        store.put(namespace, namespace[-1] + str(len(namespace)), {"v": 1})
    assert store.list_namespaces() == [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "x", "c"), ("z",)]
    assert store.list_namespaces(prefix=("a", "b")) == [("a", "b", "c"), ("a", "b", "d", "e")]
    assert store.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("a", "x", "c")]
    assert store.list_namespaces(prefix=("a", "*", "c")) == [("a", "b", "c"), ("a", "x", "c")]
    assert store.list_namespaces(prefix=("a",), max_depth=2) == [("a", "b"), ("a", "x")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "d", "e"), ("a", "x", "c")]
    assert store.list_namespaces(prefix=("A",)) == []


# -- time to live ---------------------------------------------------------------------------------------


def expire(store: DjangoStore, key: str) -> None:
    rows(store).filter(key=key).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))


def test_an_item_with_a_ttl_expires_and_no_read_sees_it_then_the_sweep_deletes_it(store: DjangoStore) -> None:
    before = timezone.now()
    store.put(("t",), "short", {"v": 1}, ttl=5)
    store.put(("t2",), "kept", {"v": 2})
    row = rows(store).get(key="short")
    assert row.ttl_minutes == 5
    assert before + datetime.timedelta(minutes=5) <= row.expires_at <= timezone.now() + datetime.timedelta(minutes=5)
    assert rows(store).get(key="kept").expires_at is None

    expire(store, "short")
    assert store.get(("t",), "short") is None
    assert store.search(("t",)) == []
    assert store.list_namespaces() == [("t2",)]
    assert store.sweep_ttl() == 1
    assert list(rows(store).values_list("key", flat=True)) == ["kept"]


def test_reads_refresh_the_ttl_unless_told_not_to(store: DjangoStore) -> None:
    store.put(("t",), "k", {"v": 1}, ttl=60)
    soon = timezone.now() + datetime.timedelta(minutes=1)
    rows(store).update(expires_at=soon)
    store.get(("t",), "k", refresh_ttl=False)
    store.search(("t",), refresh_ttl=False)
    assert rows(store).get().expires_at == soon
    store.get(("t",), "k")
    assert rows(store).get().expires_at > timezone.now() + datetime.timedelta(minutes=59)
    rows(store).update(expires_at=soon)
    store.search(("t",))
    assert rows(store).get().expires_at > timezone.now() + datetime.timedelta(minutes=59)


def test_the_default_ttl_and_refresh_setting_of_the_store_apply(store: DjangoStore) -> None:
    configured = DjangoStore(store.using, ttl={"default_ttl": 30, "refresh_on_read": False})
    configured.put(("t",), "k", {"v": 1})
    configured.put(("t",), "forever", {"v": 1}, ttl=None)
    assert rows(store).get(key="k").ttl_minutes == 30
    assert rows(store).get(key="forever").expires_at is None
    soon = timezone.now() + datetime.timedelta(minutes=1)
    rows(store).filter(key="k").update(expires_at=soon)
    configured.get(("t",), "k")
    assert rows(store).get(key="k").expires_at == soon


# -- async ---------------------------------------------------------------------------------------------


def test_the_async_methods_do_what_the_sync_ones_do(store: DjangoStore) -> None:
    async def journey() -> tuple[Any, ...]:
        await store.aput(("mem", "u1"), "a", {"text": "likes tea", "n": 1})
        await store.aput(("mem", "u2"), "b", {"text": "likes coffee", "n": 2}, ttl=10)
        got = await store.aget(("mem", "u1"), "a")
        found = await store.asearch(("mem",), filter={"n": {"$gte": 2}})
        namespaces = await store.alist_namespaces(prefix=("mem",))
        await store.adelete(("mem", "u1"), "a")
        gone = await store.aget(("mem", "u1"), "a")
        return got, found, namespaces, gone

    got, found, namespaces, gone = async_to_sync(journey)()
    assert got.value == {"text": "likes tea", "n": 1}
    assert [i.key for i in found] == ["b"]
    assert namespaces == [("mem", "u1"), ("mem", "u2")]
    assert gone is None
    assert rows(store).get(key="b").ttl_minutes == 10


# -- semantic search -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ALIASES)
def test_a_query_ranks_items_by_similarity_and_unindexed_items_come_last(alias: str) -> None:
    store = semantic(alias, fields=["text"])
    store.put(("docs",), "py", {"text": "python programming tutorial for python beginners"})
    store.put(("docs",), "ts", {"text": "typescript guide for frontend developers"})
    store.put(("docs",), "cook", {"text": "cooking pasta with tomato sauce"})
    store.put(("docs",), "hidden", {"text": "python python python"}, index=False)
    store.put(("docs",), "notext", {"title": "no text field here"})

    found = store.search(("docs",), query="python tutorial", limit=10)
    assert found[0].key == "py" and found[0].score is not None and found[0].score > 0.3
    scored = [i for i in found if i.score is not None]
    assert [i.score for i in scored] == sorted((i.score for i in scored), reverse=True)
    assert {i.key for i in found if i.score is None} == {"hidden", "notext"}
    assert [i.key for i in found[len(scored):]] == ["notext", "hidden"]  # the unscored, newest first
    assert StoreVector.objects.using(alias).count() == 3
    assert [i.key for i in store.search(("docs",), query="python tutorial", limit=1, offset=1)] == [scored[1].key]
    assert {i.key for i in store.search(("docs",), query="python", filter={"text": {"$ne": "x"}}, limit=2)} <= {
        "py", "ts", "cook", "hidden"}


@pytest.mark.parametrize("alias", ALIASES)
def test_a_new_value_replaces_the_vectors_and_index_paths_pick_what_is_embedded(alias: str) -> None:
    store = semantic(alias)
    store.put(("m",), "k", {"text": "cooking pasta"})
    store.put(("m",), "other", {"text": "gardening roses"})
    assert store.search(("m",), query="pasta cooking", limit=1)[0].key == "k"
    store.put(("m",), "k", {"text": "roses gardening tips", "notes": ["pasta", "cooking pasta"]},
              index=["notes[*]"])
    item = StoreItem.objects.using(alias).get(key="k")
    assert sorted(StoreVector.objects.using(alias).filter(item=item).values_list("field", flat=True)) == [
        "notes[*].0", "notes[*].1"]
    assert store.search(("m",), query="pasta cooking", limit=1)[0].key == "k"
    store.delete(("m",), "k")
    assert not StoreVector.objects.using(alias).filter(item_id=item.id).exists()


@pytest.mark.parametrize("alias", ALIASES)
def test_an_async_embedding_function_serves_the_async_methods(alias: str) -> None:
    hashing = HashingEmbeddings()

    async def embed(texts: list[str]) -> list[list[float]]:
        return hashing.embed_documents(texts)

    store = DjangoStore(alias, index={"dims": 512, "embed": embed, "fields": ["text"]})

    async def journey() -> list[Any]:
        await store.aput(("d",), "tea", {"text": "green tea from japan"})
        await store.aput(("d",), "car", {"text": "electric car batteries"})
        return await store.asearch(("d",), query="japanese green tea")

    found = async_to_sync(journey)()
    assert [i.key for i in found] == ["tea", "car"] and found[0].score > found[1].score  # type: ignore[operator]


# -- against LangGraph's own in-memory store ------------------------------------------------------------


def random_ops(rng: random.Random, count: int) -> list[Any]:
    namespaces = [("a",), ("a", "b"), ("a", "b", "c"), ("a", "bc"), ("x", "b"), ("x",)]
    ops: list[Any] = []
    for _ in range(count):
        ns = rng.choice(namespaces)
        key = f"k{rng.randrange(6)}"
        roll = rng.random()
        if roll < 0.55:
            value = {"n": rng.randrange(5), "tag": rng.choice(["red", "blue"]), "deep": {"on": rng.random() < 0.5}}
            ops.append(PutOp(ns, key, value))
        elif roll < 0.65:
            ops.append(PutOp(ns, key, None))
        elif roll < 0.8:
            ops.append(GetOp(ns, key))
        elif roll < 0.92:
            filter = rng.choice([None, {"tag": "red"}, {"n": {"$gte": 2}}, {"deep": {"on": True}},
                                 {"n": {"$ne": 1}, "tag": "blue"}])
            ops.append(SearchOp(ns[: rng.randrange(len(ns) + 1)], filter=filter, limit=100))
        else:
            conditions = rng.choice([(), (("prefix", ("a",)),), (("suffix", ("b",)),), (("prefix", ("*", "b")),)])
            ops.append(ListNamespacesOp(tuple(MatchCondition(t, p) for t, p in conditions),
                                        max_depth=rng.choice([None, 1, 2]), limit=100))
    return ops


def comparable(result: Any) -> Any:
    if isinstance(result, list) and result and not isinstance(result[0], tuple):
        # Searches: the same items, whatever their order (ours: newest first; in-memory: insertion order).
        return sorted((i.namespace, i.key, repr(i.value)) for i in result)
    if result is not None and hasattr(result, "value"):
        return (result.namespace, result.key, result.value)
    return result


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_sequence_of_batches_answers_as_langgraphs_in_memory_store(store: DjangoStore, seed: int) -> None:
    rng = random.Random(seed)
    reference = InMemoryStore()
    for _ in range(25):
        ops = random_ops(rng, rng.randrange(1, 6))
        # The in-memory store remembers a namespace once it was read or emptied; ours lists only
        # namespaces that hold items. Compare listings alone, with the empty namespaces pruned.
        batches = [[op for op in ops if not isinstance(op, ListNamespacesOp)]]
        batches += [[op] for op in ops if isinstance(op, ListNamespacesOp)]
        for batch in filter(None, batches):
            for namespace in [ns for ns, items in reference._data.items() if not items]:
                del reference._data[namespace]
            ours, theirs = store.batch(batch), reference.batch(batch)
            assert [comparable(r) for r in ours] == [comparable(r) for r in theirs], batch


# -- settings and sweeping -----------------------------------------------------------------------------


def words(texts: list[str]) -> list[list[float]]:
    """An embedding function named in LOOPGATE_STORE_EMBEDDINGS by the settings test."""
    return HashingEmbeddings(64).embed_documents(texts)


def test_the_settings_choose_the_embeddings_the_fields_and_the_ttl() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from orchestrator.store import store_from_settings

    plain = store_from_settings()
    assert plain.embeddings is None and plain.ttl_config == {"refresh_on_read": True, "default_ttl": None}
    with override_settings(LOOPGATE_STORE_EMBEDDINGS="loopgate", LOOPGATE_STORE_INDEX_FIELDS=["text"],
                           LOOPGATE_STORE_TTL_MINUTES=15.0, LOOPGATE_STORE_TTL_REFRESH_ON_READ=False):
        configured = store_from_settings()
    assert configured.embeddings is not None and configured.fields == [("text", ["text"])]
    assert configured.ttl_config == {"refresh_on_read": False, "default_ttl": 15.0}
    with override_settings(LOOPGATE_STORE_EMBEDDINGS="tests.orchestrator.test_store:words"):
        store = store_from_settings()
    store.put(("s",), "k", {"text": "a sentence about gardens"})
    assert StoreVector.objects.get().embedding == pytest.approx(words(['{"text": "a sentence about gardens"}'])[0])
    for spec in ("no-colon", "tests.orchestrator.test_store:missing", "no_such_module:x"):
        with override_settings(LOOPGATE_STORE_EMBEDDINGS=spec), pytest.raises(ImproperlyConfigured):
            store_from_settings()


@pytest.mark.parametrize("env", [{"LOOPGATE_STORE_EMBEDDINGS": "not a spec"}, {"LOOPGATE_STORE_TTL_MINUTES": "-3"},
                                 {"LOOPGATE_STORE_TTL_MINUTES": "a week"}])
def test_bad_store_settings_stop_the_start_up_saying_which(env: dict[str, str], tmp_path: Any) -> None:
    from tests.orchestrator.test_settings import load

    result = load(DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3", **env)
    assert result.returncode != 0
    assert f"{next(iter(env))} must be" in result.stderr or f"{next(iter(env))} is empty" in result.stderr


def test_the_sweep_task_deletes_expired_items_and_is_scheduled() -> None:
    from unittest import mock

    from django.test import override_settings

    from orchestrator import tasks
    from orchestrator.celery import schedule_periodic_tasks
    from orchestrator.store import get_store as loopgate_store

    loopgate_store().put(("t",), "old", {"v": 1}, ttl=1)
    loopgate_store().put(("t",), "new", {"v": 1}, ttl=1)
    StoreItem.objects.filter(key="old").update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert tasks.sweep_store() == 1
    assert list(StoreItem.objects.values_list("key", flat=True)) == ["new"]

    sender = mock.Mock()
    with override_settings(LOOPGATE_STORE_SWEEP_SECONDS=42):
        schedule_periodic_tasks(sender)
    calls = {c.kwargs["name"]: c.args for c in sender.add_periodic_task.call_args_list}
    assert calls["sweep expired store items"][0] == 42.0
    sender.signature.assert_any_call("orchestrator.tasks.sweep_store")


# -- inside graphs, in this process ---------------------------------------------------------------------


class Notes(TypedDict, total=False):
    user: str
    note: str
    seen: list[str]


async def anote(state: Notes) -> dict[str, Any]:
    store = get_store()
    namespace = ("notes", state["user"])
    seen = [item.value["note"] for item in await store.asearch(namespace, limit=100)]
    await store.aput(namespace, f"n{len(seen)}", {"note": state["note"]})
    return {"seen": sorted(seen)}


def note(state: Notes, *, store: BaseStore) -> dict[str, Any]:
    namespace = ("notes", state["user"])
    seen = [item.value["note"] for item in store.search(namespace, limit=100)]
    store.put(namespace, f"n{len(seen)}", {"note": state["note"]})
    return {"seen": sorted(seen)}


def notes_graph(node: Any, store: DjangoStore) -> Any:
    builder = StateGraph(Notes)
    builder.add_node("note", node)
    builder.add_edge(START, "note")
    builder.add_edge("note", END)
    return compile_graph(builder, None, store)


@pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])
@pytest.mark.parametrize("alias", ALIASES)
def test_sync_and_async_nodes_share_the_store_across_invocations(alias: str) -> None:
    store = DjangoStore(alias)
    sync_graph, async_graph = notes_graph(note, store), notes_graph(anote, store)
    assert sync_graph.invoke({"user": "ada", "note": "one"})["seen"] == []
    assert async_to_sync(async_graph.ainvoke)({"user": "ada", "note": "two"})["seen"] == ["one"]
    assert sync_graph.invoke({"user": "ada", "note": "three"})["seen"] == ["one", "two"]
    assert sync_graph.invoke({"user": "bob", "note": "x"})["seen"] == []
    assert StoreItem.objects.using(alias).filter(namespace="notes.ada").count() == 3


@pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])
@pytest.mark.parametrize("alias", ALIASES)
def test_concurrent_writers_of_the_same_keys_leave_one_item_and_one_set_of_vectors_each(alias: str) -> None:
    import threading

    from django.db import connections

    store = semantic(alias)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for round in range(10):
                store.batch([PutOp(("race",), f"k{(n + round) % 3}", {"text": f"writer {n} round {round}"}),
                             SearchOp(("race",), query="writer round", limit=3)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(StoreItem.objects.using(alias).values_list("key", flat=True)) == ["k0", "k1", "k2"]
    assert StoreVector.objects.using(alias).count() == 3


def test_a_large_search_refreshes_the_ttl_of_every_item_it_returns(store: DjangoStore) -> None:
    store.batch([PutOp(("many",), f"k{n:04}", {"n": n}, ttl=60) for n in range(1200)])
    soon = timezone.now() + datetime.timedelta(minutes=1)
    rows(store).update(expires_at=soon)
    assert len(store.search(("many",), limit=2000)) == 1200
    assert not rows(store).filter(expires_at=soon).exists()
