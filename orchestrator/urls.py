"""The root URLconf."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from orchestrator import views

handler400 = "orchestrator.views.bad_request"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("graphs/", views.graph_list, name="graphs"),
    path("graphs/<str:name>/start/", views.graph_start, name="graph_start"),
    path("budgets/", views.budgets, name="budgets"),
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/create/", views.api_token_create, name="api_token_create"),
    path("tokens/lockouts/lift/", views.lockout_lift, name="lockout_lift"),
    path("tokens/<int:user_id>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("budgets/default/", views.budget_default_set, name="budget_default_set"),
    path("budgets/graphs/<str:name>/", views.graph_budget_set, name="graph_budget_set"),
    path("executions/<uuid:execution_id>/budget/", views.execution_budget_raise, name="execution_budget_raise"),
    path("store/", include("orchestrator.store.urls")),
    path("approvals/", include("approvals.urls")),
    path("executions/", include("traces.urls")),
    path("advisor/", include("advisor.urls")),
    path("api/", include("orchestrator.api.urls")),
    path("langgraph/", include("agent_api.urls")),
    path("slack/", include("slack_approvals.urls")),
    path("chat/", include("agent_api.chat_urls")),
    path("admin/", admin.site.urls),
]
