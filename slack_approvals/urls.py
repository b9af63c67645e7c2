from __future__ import annotations

from django.urls import path

from slack_approvals import views

app_name = "slack_approvals"
urlpatterns = [
    path("interactivity/", views.interactivity_endpoint, name="interactivity"),
    path("link/<str:token>/", views.link, name="link"),
]
