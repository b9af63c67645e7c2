from __future__ import annotations

from django.urls import path

from advisor import views

app_name = "advisor"
urlpatterns = [
    path("graphs/<str:name>/dismiss/", views.finding_dismiss, name="dismiss"),
    path("graphs/<str:name>/restore/", views.finding_restore, name="restore"),
]
