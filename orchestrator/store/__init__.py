"""LangGraph's Store (long-term memory across threads) in Loopgate's own database: ``DjangoStore``.

Every graph the registry compiles gets the process-wide store (``get_store()``),
so inside a node ``langgraph.config.get_store()`` and a ``store`` argument work
on the workers as on LangGraph's own server; items live in ``StoreItem`` /
``StoreVector`` (``orchestrator/models/store.py``), on Postgres and SQLite alike.

- ``matching``: namespaces, search filters, value checks and cosine similarity, no database;
- ``store``: the ``BaseStore`` API itself (``batch`` / ``abatch``), TTL and semantic search;
- ``admin``: what the admins' Store page reads and deletes.

Configured by settings (README, "The Store"): ``LOOPGATE_STORE_EMBEDDINGS`` and
``LOOPGATE_STORE_INDEX_FIELDS`` for semantic search, ``LOOPGATE_STORE_TTL_MINUTES``
and ``LOOPGATE_STORE_TTL_REFRESH_ON_READ`` for expiry.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS
from langgraph.store.base import IndexConfig, TTLConfig

from orchestrator.store.matching import InvalidStoreValue
from orchestrator.store.store import DjangoStore

__all__ = ["DjangoStore", "InvalidStoreValue", "get_store", "store_from_settings"]

_shared: DjangoStore | None = None
_shared_lock = threading.Lock()


def get_store() -> DjangoStore:
    """The process-wide store on the default database, configured by the settings.

    Safe to share: like the checkpointer it keeps no connection of its own.
    """
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = store_from_settings()
    return _shared


def store_from_settings(using: str = DEFAULT_DB_ALIAS) -> DjangoStore:
    ttl: TTLConfig = {"refresh_on_read": settings.LOOPGATE_STORE_TTL_REFRESH_ON_READ,
                      "default_ttl": settings.LOOPGATE_STORE_TTL_MINUTES}
    embed = _embeddings(settings.LOOPGATE_STORE_EMBEDDINGS)
    index: IndexConfig | None = None
    if embed is not None:
        index = {"embed": embed, "fields": list(settings.LOOPGATE_STORE_INDEX_FIELDS)}
    return DjangoStore(using, index=index, ttl=ttl)


def _embeddings(spec: str) -> Any:
    if not spec:
        return None
    if spec == "loopgate":
        from orchestrator.router import get_embeddings

        return get_embeddings()[0]
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ImproperlyConfigured(
            f"LOOPGATE_STORE_EMBEDDINGS is empty, 'loopgate' or 'package.module:attr'; got {spec!r}.")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ImproperlyConfigured(f"LOOPGATE_STORE_EMBEDDINGS={spec!r} cannot be loaded: {exc}") from exc
