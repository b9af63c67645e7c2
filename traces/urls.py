from __future__ import annotations

from django.urls import path

from traces import views

app_name = "traces"
urlpatterns = [
    path("", views.executions, name="executions"),
    path("<uuid:execution_id>/", views.execution_detail, name="execution"),
    path("<uuid:execution_id>/steps/", views.execution_steps, name="steps"),
    path("<uuid:execution_id>/tokens/", views.execution_tokens, name="tokens"),
    path("<uuid:execution_id>/steps/<int:step_id>/", views.step_detail, name="step"),
    path("<uuid:execution_id>/export.json", views.execution_export, name="export"),
    path("<uuid:execution_id>/cancel/", views.execution_cancel, name="cancel"),
    path("<uuid:execution_id>/state/", views.execution_state, name="state"),
    path("<uuid:execution_id>/fork/", views.execution_fork, name="fork"),
    path("<uuid:execution_id>/lineage/", views.execution_lineage, name="lineage"),
    path("<uuid:execution_id>/compare/", views.execution_compare, name="compare"),
]
