"""LangGraph's long-term memory (its ``BaseStore``) on Django models: the tables of ``DjangoStore``.

- ``StoreItem``: one item, a JSON object under a namespace and a key. The
  namespace is kept as LangGraph's Postgres store keeps it, its labels joined by
  ``.`` (a label may not contain one), so a namespace and its items are one
  indexed lookup; ``expires_at`` / ``ttl_minutes`` carry its time to live.
- ``StoreVector``: the embedding of one indexed field of an item, when the store
  has an embedding function (semantic search); deleted with its item.

Only ``orchestrator/store`` writes these tables.
"""

from __future__ import annotations

from django.db import models


class StoreItem(models.Model):
    """One item of the Store: ``value`` under ``namespace`` (labels joined by ``.``) and ``key``."""

    namespace = models.TextField()
    key = models.TextField()
    value = models.JSONField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # Set when the item has a time to live: it expires ttl_minutes after its
    # last write (or read, when reads refresh it); reads no longer see it then.
    expires_at = models.DateTimeField(null=True, blank=True)
    ttl_minutes = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            # Also the index of get (namespace = ... AND key = ...) and of a namespace's items.
            models.UniqueConstraint(fields=["namespace", "key"], name="storeitem_unique_key"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="storeitem_expires_at",
                         condition=models.Q(expires_at__isnull=False)),
            models.Index(fields=["-updated_at"], name="storeitem_updated_at"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace} {self.key}"

    @property
    def namespace_labels(self) -> tuple[str, ...]:
        return tuple(self.namespace.split("."))


class StoreVector(models.Model):
    """The embedding of one indexed field (a JSON path, ``$`` for the whole value) of one item."""

    item = models.ForeignKey(StoreItem, on_delete=models.CASCADE, related_name="vectors")
    field = models.TextField()
    embedding = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "field"], name="storevector_unique_field"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} {self.field}"
