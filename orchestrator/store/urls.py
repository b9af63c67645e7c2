from __future__ import annotations

from django.urls import path

from orchestrator.store import views

app_name = "store"

urlpatterns = [
    path("", views.items, name="items"),
    path("items/delete/", views.item_delete, name="item_delete"),
    path("namespaces/delete/", views.namespace_delete, name="namespace_delete"),
]
