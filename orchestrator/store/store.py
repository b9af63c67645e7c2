"""``DjangoStore``: LangGraph's ``BaseStore`` (long-term memory) on Loopgate's own tables.

One batch of operations runs in three steps, in this order:

1. **Plan** (no I/O): every op is checked (namespace labels, key, value, TTL,
   filter, limits), so a bad op refuses the whole batch before anything is
   written; puts of one (namespace, key) collapse to the last one.
2. **Embed** (outside any transaction: it may call a model): the queries of
   semantic searches and the indexed fields of the put values, when the store
   has an embedding function. ``batch`` embeds with the sync methods,
   ``abatch`` with the async ones on the event loop.
3. **Database**, in one transaction: reads first (get, search, list
   namespaces), then the writes, as LangGraph's own stores do, so a read in a
   batch sees the store as it was before the batch's puts.

Expired items (``expires_at`` past) are invisible to every read even before
``sweep_ttl`` deletes them. A read refreshes the TTL of what it returns unless
``refresh_ttl=False`` (or ``LOOPGATE_STORE_TTL_REFRESH_ON_READ=0``).

Search order: without a query (or without embeddings) the most recently
updated first, as LangGraph's Postgres store; with a query and embeddings, by
cosine similarity of the query with the best-matching indexed field of each
item, items without a vector after those with one, as LangGraph's in-memory
store. Similarity is computed in Python (no pgvector), over the items that
pass the namespace prefix and the filter.

Threads: like the checkpointer the store holds only a database alias; each call
uses the calling thread's Django connection, closed with the thread when
LangGraph called from one of its short-lived worker threads.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from orchestrator.checkpointer.saver import _close_with_thread
from orchestrator.models import StoreItem, StoreVector
from orchestrator.store.matching import (
    InvalidStoreValue,
    check_filter,
    check_key,
    check_ttl,
    check_value,
    cosine,
    in_prefix,
    matches_condition,
    matches_filter,
    namespace_labels,
    namespace_text,
)

# Rows read per query while a search without a query walks the newest items.
SEARCH_CHUNK = 200
# Ids per IN (...) list: SQLite builds allow a limited number of parameters.
IDS_PER_QUERY = 500

Key = tuple[tuple[str, ...], str]


@dataclass
class _Plan:
    """A checked batch: its ops by kind with their positions, and the puts to embed."""

    size: int
    gets: list[tuple[int, GetOp]] = field(default_factory=list)
    searches: list[tuple[int, SearchOp]] = field(default_factory=list)
    lists: list[tuple[int, ListNamespacesOp]] = field(default_factory=list)
    puts: dict[Key, PutOp] = field(default_factory=dict)
    values: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # (namespace, key, field, text) of every indexed field of every put value.
    texts: list[tuple[tuple[str, ...], str, str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


class DjangoStore(BaseStore):
    """A LangGraph store on Django models, for any database alias (Postgres or SQLite).

    ``DjangoStore(using="default", index={"embed": ..., "fields": [...]}, ttl={...})``;
    ``get_store()`` in ``orchestrator.store`` returns the process-wide one the
    registry compiles into every graph.
    """

    supports_ttl = True

    def __init__(self, using: str = DEFAULT_DB_ALIAS, *, index: IndexConfig | None = None,
                 ttl: TTLConfig | None = None) -> None:
        if using not in settings.DATABASES:
            raise ImproperlyConfigured(f"DjangoStore: no database {using!r} in DATABASES.")
        self.using = using
        self.ttl_config = ttl
        self.embeddings: Embeddings | None = None
        self.index_config: dict[str, Any] | None = None
        self.fields: list[tuple[str, Any]] = []
        if index:
            self.index_config = dict(index)
            self.embeddings = ensure_embeddings(index.get("embed"))
            self.fields = [(path, path if path == "$" else tokenize_path(path))
                           for path in (index.get("fields") or ["$"])]

    def __repr__(self) -> str:
        return f"DjangoStore(using={self.using!r}, semantic={self.embeddings is not None})"

    # -- the BaseStore API ---------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        plan = self._plan(ops)
        query_vectors: dict[str, list[float]] = {}
        text_vectors: list[list[float]] = []
        if self.embeddings is not None:
            query_vectors = {query: self.embeddings.embed_query(query) for query in plan.queries}
            if plan.texts:
                text_vectors = self.embeddings.embed_documents([text for *_, text in plan.texts])
        return self._run(plan, query_vectors, text_vectors)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        plan = self._plan(ops)
        query_vectors: dict[str, list[float]] = {}
        text_vectors: list[list[float]] = []
        if self.embeddings is not None:
            for query in plan.queries:
                query_vectors[query] = await self.embeddings.aembed_query(query)
            if plan.texts:
                text_vectors = await self.embeddings.aembed_documents([text for *_, text in plan.texts])
        return await sync_to_async(self._run)(plan, query_vectors, text_vectors)

    def sweep_ttl(self) -> int:
        """Delete the items whose TTL has run out; returns how many."""
        _close_with_thread(self.using)
        with transaction.atomic(using=self.using):
            expired = StoreItem.objects.using(self.using).filter(expires_at__lte=timezone.now())
            ids = list(expired.values_list("id", flat=True))
            for start in range(0, len(ids), IDS_PER_QUERY):
                StoreItem.objects.using(self.using).filter(id__in=ids[start:start + IDS_PER_QUERY]).delete()
        return len(ids)

    async def asweep_ttl(self) -> int:
        return await sync_to_async(self.sweep_ttl)()

    # -- 1. plan -------------------------------------------------------------------------------------

    def _plan(self, ops: Iterable[Op]) -> _Plan:
        ops = list(ops)
        plan = _Plan(size=len(ops))
        for position, op in enumerate(ops):
            if not isinstance(op, (GetOp, SearchOp, ListNamespacesOp, PutOp)):
                raise InvalidStoreValue(f"Unknown store operation {type(op).__name__}.")
            validate_op_namespace(op)
            if isinstance(op, GetOp):
                check_key(op.key)
                plan.gets.append((position, op))
            elif isinstance(op, SearchOp):
                check_filter(op.filter)
                _check_page(op.limit, op.offset)
                plan.searches.append((position, op))
                if op.query and self.embeddings is not None and op.query not in plan.queries:
                    plan.queries.append(op.query)
            elif isinstance(op, ListNamespacesOp):
                _check_page(op.limit, op.offset)
                if op.max_depth is not None and (not isinstance(op.max_depth, int) or op.max_depth < 1):
                    raise InvalidStoreValue(f"max_depth is a whole number of 1 or more; got {op.max_depth!r}.")
                plan.lists.append((position, op))
            else:
                namespace = tuple(op.namespace)
                if not namespace:
                    raise InvalidNamespaceError("An item's namespace has at least one label.")
                if namespace[0] == "langgraph":
                    raise InvalidNamespaceError(f'A namespace may not start with "langgraph"; got {namespace}.')
                key = check_key(op.key)
                check_ttl(op.ttl)
                if op.value is not None:
                    plan.values[(namespace, key)] = check_value(op.value)
                else:
                    plan.values.pop((namespace, key), None)
                plan.puts[(namespace, key)] = op
        if self.embeddings is not None:
            for (namespace, key), op in plan.puts.items():
                if op.value is None or op.index is False:
                    continue
                fields = self.fields if op.index is None else [(path, tokenize_path(path)) for path in op.index]
                for path, tokens in fields:
                    texts = get_text_at_path(plan.values[(namespace, key)], tokens)
                    for i, text in enumerate(texts):
                        plan.texts.append((namespace, key, f"{path}.{i}" if len(texts) > 1 else path, text))
        return plan

    # -- 3. database ---------------------------------------------------------------------------------

    def _run(self, plan: _Plan, query_vectors: dict[str, list[float]],
             text_vectors: list[list[float]]) -> list[Result]:
        if len(text_vectors) != len(plan.texts):
            raise ValueError(f"The embedding function returned {len(text_vectors)} vectors for "
                             f"{len(plan.texts)} texts.")
        _close_with_thread(self.using)
        results: list[Result] = [None] * plan.size
        now = timezone.now()
        with transaction.atomic(using=self.using):
            refresh: set[int] = set()
            for position, get in plan.gets:
                item, row_id = self._get(get, now)
                results[position] = item
                if item is not None and get.refresh_ttl:
                    refresh.add(row_id)
            for position, search in plan.searches:
                found = self._search(search, now, query_vectors.get(search.query or ""))
                results[position] = [item for item, _ in found]
                if search.refresh_ttl:
                    refresh.update(row_id for _, row_id in found)
            for position, listing in plan.lists:
                results[position] = self._list_namespaces(listing, now)
            self._refresh_ttl(refresh, now)
            if plan.puts:
                self._write(plan, text_vectors, now)
        return results

    def _live(self, now: datetime.datetime) -> QuerySet[StoreItem]:
        return StoreItem.objects.using(self.using).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def _get(self, op: GetOp, now: datetime.datetime) -> tuple[Item | None, int]:
        row = self._live(now).filter(namespace=namespace_text(op.namespace), key=op.key).first()
        if row is None:
            return None, 0
        return _item(row), row.id

    def _search(self, op: SearchOp, now: datetime.datetime,
                query_vector: list[float] | None) -> list[tuple[SearchItem, int]]:
        prefix = tuple(op.namespace_prefix)
        rows = self._live(now).filter(namespace_under(prefix, connections[self.using].vendor))
        rows = rows.order_by("-updated_at", "namespace", "key")

        def matching() -> Iterator[StoreItem]:
            for row in rows.iterator(chunk_size=SEARCH_CHUNK):
                if in_prefix(row.namespace_labels, prefix) and matches_filter(row.value, op.filter):
                    yield row

        if query_vector is None:
            page: list[tuple[StoreItem, float | None]] = []
            for index, row in enumerate(matching()):
                if index >= op.offset + op.limit:
                    break
                if index >= op.offset:
                    page.append((row, None))
        else:
            candidates = list(matching())
            best: dict[int, float] = {}
            ids = [row.id for row in candidates]
            for start in range(0, len(ids), IDS_PER_QUERY):
                vectors = StoreVector.objects.using(self.using).filter(item_id__in=ids[start:start + IDS_PER_QUERY])
                for item_id, embedding in vectors.values_list("item_id", "embedding"):
                    score = cosine(query_vector, embedding)
                    best[item_id] = max(score, best.get(item_id, score))
            # Scored first, best first; then the unscored in the no-query order (sorted() is stable).
            ranked = sorted(candidates, key=lambda row: (row.id not in best, -best.get(row.id, 0.0)))
            page = [(row, best.get(row.id)) for row in ranked[op.offset:op.offset + op.limit]]
        return [(_item(row, score=score, search=True), row.id) for row, score in page]  # type: ignore[misc]

    def _list_namespaces(self, op: ListNamespacesOp, now: datetime.datetime) -> list[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        texts = self._live(now).values_list("namespace", flat=True).distinct()
        for text in texts.iterator(chunk_size=SEARCH_CHUNK):
            labels = namespace_labels(text)
            if all(matches_condition(labels, condition) for condition in op.match_conditions or ()):
                found.add(labels[: op.max_depth] if op.max_depth is not None else labels)
        return sorted(found)[op.offset:op.offset + op.limit]

    def _refresh_ttl(self, ids: set[int], now: datetime.datetime) -> None:
        if not ids:
            return
        id_list = sorted(ids)
        by_ttl: dict[float, list[int]] = defaultdict(list)
        for start in range(0, len(id_list), IDS_PER_QUERY):
            rows = StoreItem.objects.using(self.using).filter(id__in=id_list[start:start + IDS_PER_QUERY],
                                                              ttl_minutes__isnull=False)
            for row_id, minutes in rows.values_list("id", "ttl_minutes"):
                by_ttl[minutes].append(row_id)
        for minutes, row_ids in by_ttl.items():
            for start in range(0, len(row_ids), IDS_PER_QUERY):
                StoreItem.objects.using(self.using).filter(id__in=row_ids[start:start + IDS_PER_QUERY]).update(
                    expires_at=now + datetime.timedelta(minutes=minutes))

    def _write(self, plan: _Plan, text_vectors: list[list[float]], now: datetime.datetime) -> None:
        items = StoreItem.objects.using(self.using)
        deletes: dict[str, list[str]] = defaultdict(list)
        upserts: list[StoreItem] = []
        for (namespace, key), op in plan.puts.items():
            if op.value is None:
                deletes[namespace_text(namespace)].append(key)
                continue
            ttl = check_ttl(op.ttl)
            upserts.append(StoreItem(
                namespace=namespace_text(namespace), key=key, value=plan.values[(namespace, key)],
                created_at=now, updated_at=now, ttl_minutes=ttl,
                expires_at=now + datetime.timedelta(minutes=ttl) if ttl is not None else None,
            ))
        for text, keys in deletes.items():
            items.filter(namespace=text, key__in=keys).delete()
        if not upserts:
            return
        # created_at is left as it was when the item already exists.
        items.bulk_create(upserts, update_conflicts=True, unique_fields=["namespace", "key"],
                          update_fields=["value", "updated_at", "expires_at", "ttl_minutes"])
        if self.embeddings is None:
            return
        # The new value's vectors replace the old ones (none when index=False).
        ids: dict[Key, int] = {}
        for text, keys in _by_namespace(upserts).items():
            for row_id, key in items.filter(namespace=text, key__in=keys).values_list("id", "key"):
                ids[(namespace_labels(text), key)] = row_id
        id_list = list(ids.values())
        for start in range(0, len(id_list), IDS_PER_QUERY):
            StoreVector.objects.using(self.using).filter(item_id__in=id_list[start:start + IDS_PER_QUERY]).delete()
        StoreVector.objects.using(self.using).bulk_create(
            [StoreVector(item_id=ids[(namespace, key)], field=path, embedding=[float(x) for x in vector])
             for (namespace, key, path, _), vector in zip(plan.texts, text_vectors)],
            ignore_conflicts=True,  # two paths naming one field (["a", "a"]) keep the first
        )


def namespace_under(prefix: tuple[str, ...], vendor: str) -> Q:
    """Items whose namespace is ``prefix`` or below it, as a lookup that can use an index.

    Postgres: ``LIKE 'a.b.%'`` (escaped by Django). SQLite's LIKE ignores case, so
    there a range of the byte-ordered text instead: ``/`` is the character after ``.``.
    """
    if not prefix:
        return Q()
    text = namespace_text(prefix)
    if vendor == "sqlite":
        return Q(namespace=text) | Q(namespace__gt=text + ".", namespace__lt=text + "/")
    return Q(namespace=text) | Q(namespace__startswith=text + ".")


def _check_page(limit: Any, offset: Any) -> None:
    for name, number in (("limit", limit), ("offset", offset)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InvalidStoreValue(f"{name} is a whole number of 0 or more; got {number!r}.")


def _by_namespace(rows: list[StoreItem]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        grouped[row.namespace].append(row.key)
    return grouped


def _item(row: StoreItem, *, score: float | None = None, search: bool = False) -> Item:
    if search:
        return SearchItem(namespace=row.namespace_labels, key=row.key, value=row.value,
                          created_at=row.created_at, updated_at=row.updated_at, score=score)
    return Item(value=row.value, key=row.key, namespace=row.namespace_labels,
                created_at=row.created_at, updated_at=row.updated_at)
