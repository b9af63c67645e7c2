from __future__ import annotations

from django.urls import path

from approvals import views

app_name = "approvals"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("decide/", views.bulk_decide, name="bulk_decide"),
    path("audit/", views.audit, name="audit"),
    path("<uuid:approval_id>/", views.detail, name="detail"),
    path("<uuid:approval_id>/decide/", views.decide, name="decide"),
    path("<uuid:approval_id>/claim/", views.claim, name="claim"),
    path("<uuid:approval_id>/release/", views.release, name="release"),
    path("<uuid:approval_id>/status/", views.execution_status, name="execution_status"),
]
