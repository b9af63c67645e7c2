from __future__ import annotations

from django.urls import path

from traces import views

app_name = "traces"
urlpatterns = [
    path("", views.executions, name="executions"),
    path("<uuid:execution_id>/", views.execution_detail, name="execution"),
]
