"""What the admins' Store page reads and deletes: items by namespace prefix and key, newest first.

Deletes are audited in their own transaction (``AuditEntry.Kind.STORE``); they go
straight to the tables, which is what ``DjangoStore.delete`` does too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q

from orchestrator import roles
from orchestrator.audit import audit_record
from orchestrator.errors import PermissionDenied
from orchestrator.models import AuditEntry, StoreItem
from orchestrator.store.matching import SEPARATOR, namespace_text
from orchestrator.store.store import namespace_under

PAGE_SIZE = 50
NAMESPACES_SHOWN = 30


@dataclass
class StorePage:
    items: list[StoreItem]
    total: int
    page: int
    pages: int
    # (namespace text, item count) of the namespaces under the prefix, the fullest first.
    namespaces: list[tuple[str, int]] = field(default_factory=list)
    namespace_total: int = 0


def parse_namespace(text: str, *, field: str = "namespace") -> tuple[str, ...]:
    """``memories.ada`` → ``("memories", "ada")``; empty → ``()``. Refuses empty labels (``a..b``)."""
    text = text.strip()
    if not text:
        return ()
    labels = tuple(label.strip() for label in text.split(SEPARATOR))
    if not all(labels) or any("\x00" in label for label in labels):
        raise ValidationError({field: "Write the namespace's labels separated by dots, none empty: memories.ada"})
    return labels


def _require_admin(user: User | None) -> None:
    if user is None or not roles.is_admin(user):
        raise PermissionDenied("Only admins may see and delete Store items.")


def _under(prefix: tuple[str, ...]) -> Q:
    return namespace_under(prefix, connection.vendor)


def store_item_page(*, user: User, prefix: tuple[str, ...] = (), key: str = "", page: int = 1) -> StorePage:
    """One page of items under ``prefix`` whose key contains ``key``, the latest updated first."""
    _require_admin(user)
    rows = StoreItem.objects.filter(_under(prefix))
    namespaces = rows.values("namespace").annotate(n=Count("id")).order_by("-n", "namespace")
    if key:
        rows = rows.filter(key__icontains=key)
    total = rows.count()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    items = list(rows.order_by("-updated_at", "namespace", "key")[(page - 1) * PAGE_SIZE: page * PAGE_SIZE])
    return StorePage(items=items, total=total, page=page, pages=pages,
                     namespaces=[(row["namespace"], row["n"]) for row in namespaces[:NAMESPACES_SHOWN]],
                     namespace_total=namespaces.count())


def store_item_delete(*, user: User, namespace: tuple[str, ...], key: str) -> bool:
    """Delete one item (and its vectors); False when it was not there (someone deleted it first)."""
    _require_admin(user)
    with transaction.atomic():
        deleted, _ = StoreItem.objects.filter(namespace=namespace_text(namespace), key=key).delete()
        if deleted:
            audit_record(kind=AuditEntry.Kind.STORE, actor=user, action=f"{namespace_text(namespace)} {key}"[:200],
                         outcome="deleted", detail={"namespace": list(namespace), "key": key})
    return bool(deleted)


def store_namespace_delete(*, user: User, prefix: tuple[str, ...]) -> int:
    """Delete every item of ``prefix`` and the namespaces below it; returns how many."""
    _require_admin(user)
    if not prefix:
        raise ValidationError({"namespace": "Name the namespace to empty; the whole Store is never deleted at once."})
    with transaction.atomic():
        _, counts = StoreItem.objects.filter(_under(prefix)).delete()
        deleted = counts.get(StoreItem._meta.label, 0)
        if deleted:
            audit_record(kind=AuditEntry.Kind.STORE, actor=user, action=namespace_text(prefix)[:200],
                         outcome="namespace deleted", detail={"namespace": list(prefix), "items": deleted},
                         comment=f"{deleted} item{'s' if deleted != 1 else ''}")
    return deleted

