"""LangGraph's store paths under ``/langgraph/``: the SDK's ``client.store.*`` on Loopgate's Store.

``PUT|GET|DELETE /store/items``, ``POST /store/items/search`` and ``POST /store/namespaces``
read and write the same ``DjangoStore`` (``orchestrator.store``) that every graph gets
through ``get_store()``, so what a graph remembered, a client reads, and the other way
round. Anyone with a role reads; operators and admins write and delete (what starting a
run lets them do anyway). Bad input (a namespace label with a dot, a value that is not
a JSON object, an unknown filter operator) answers 422 and writes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from langgraph.store.base import InvalidNamespaceError, Item, SearchItem
from rest_framework.request import Request
from rest_framework.response import Response

from agent_api.api import LangGraphApi, _body
from orchestrator import roles
from orchestrator.errors import LoopgateError, PermissionDenied
from orchestrator.store import InvalidStoreValue, get_store


class ItemNotFound(LoopgateError):
    code = "not_found"
    status = 404


def _may_read(request: Request) -> None:
    if not roles.user_roles(request.user):
        raise PermissionDenied("Reading the Store needs a role: reviewer, operator or admin.")


def _may_write(request: Request) -> None:
    if not roles.can_operate(request.user):
        raise PermissionDenied("Only operators and admins may write to or delete from the Store.")


def _labels(value: Any, name: str, *, required: bool = True) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if isinstance(value, str):
        value = value.split(".") if value else []
    if not isinstance(value, list) or not all(isinstance(label, str) for label in value):
        raise ValidationError({name: "A namespace: a list of strings."})
    return tuple(value)


def _flag(value: Any, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValidationError({name: "true or false."})


def _number(value: Any, name: str, default: int | None, *, low: int = 0, high: int = 10**6) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError({name: f"A whole number from {low} to {high}."})
    return value


def _store_call(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The store's own refusals (bad namespace, value, filter) as a 422 naming the problem."""
    try:
        return call(*args, **kwargs)
    except (InvalidNamespaceError, InvalidStoreValue) as exc:
        raise ValidationError({"body": str(exc)}) from None


def item_body(item: Item) -> dict[str, Any]:
    body = {"namespace": list(item.namespace), "key": item.key, "value": item.value,
            "created_at": item.created_at.isoformat(), "updated_at": item.updated_at.isoformat()}
    if isinstance(item, SearchItem):
        body["score"] = item.score
    return body


class StoreItemApi(LangGraphApi):
    def put(self, request: Request) -> Response:
        _may_write(request)
        data = _body(request)
        key = data.get("key")
        if not isinstance(key, str):
            raise ValidationError({"key": "The item's key, a string."})
        index = data.get("index")
        if not (index is None or index is False or (isinstance(index, list)
                                                   and all(isinstance(p, str) for p in index))):
            raise ValidationError({"index": "false, or a list of JSON paths to embed."})
        ttl = data.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))):
            raise ValidationError({"ttl": "Minutes, a number."})
        store = get_store()
        _store_call(store.put, _labels(data.get("namespace"), "namespace"), key, data.get("value"), index,
                    **({"ttl": ttl} if "ttl" in data else {}))
        return Response(status=204)

    def get(self, request: Request) -> Response:
        _may_read(request)
        params = request.query_params
        key = params.get("key")
        if not key:
            raise ValidationError({"key": "The item's key."})
        namespace = _labels(params.get("namespace", ""), "namespace")
        item = _store_call(get_store().get, namespace, key, refresh_ttl=_flag(params.get("refresh_ttl"),
                                                                            "refresh_ttl"))
        if item is None:
            raise ItemNotFound(f"No item {key!r} in the namespace {'.'.join(namespace) or '(root)'}.")
        return Response(item_body(item))

    def delete(self, request: Request) -> Response:
        _may_write(request)
        data = _body(request)
        key = data.get("key")
        if not isinstance(key, str):
            raise ValidationError({"key": "The item's key, a string."})
        _store_call(get_store().delete, _labels(data.get("namespace"), "namespace"), key)
        return Response(status=204)


class StoreSearchApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        _may_read(request)
        data = _body(request)
        filter = data.get("filter")
        if filter is not None and not isinstance(filter, dict):
            raise ValidationError({"filter": "A JSON object of field: value."})
        query = data.get("query")
        if query is not None and not isinstance(query, str):
            raise ValidationError({"query": "The text to search by, a string."})
        found = _store_call(get_store().search, _labels(data.get("namespace_prefix"), "namespace_prefix",
                                                        required=False),
                            filter=filter, query=query or None,
                            limit=_number(data.get("limit"), "limit", 10, high=1000),
                            offset=_number(data.get("offset"), "offset", 0, high=10**9),
                            refresh_ttl=_flag(data.get("refresh_ttl"), "refresh_ttl"))
        return Response({"items": [item_body(item) for item in found]})


class StoreNamespacesApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        _may_read(request)
        data = _body(request)
        prefix = _labels(data.get("prefix"), "prefix", required=False) or None
        suffix = _labels(data.get("suffix"), "suffix", required=False) or None
        found = _store_call(get_store().list_namespaces, prefix=prefix, suffix=suffix,
                            max_depth=_number(data.get("max_depth"), "max_depth", None, low=1, high=1000),
                            limit=_number(data.get("limit"), "limit", 100, high=1000),
                            offset=_number(data.get("offset"), "offset", 0, high=10**9))
        return Response({"namespaces": [list(ns) for ns in found]})
