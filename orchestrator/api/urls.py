"""URLs under /api/: the v1 endpoints, the OpenAPI schema and the interactive docs.

Mounted from ``orchestrator/urls.py`` at ``api/``. Like the root URLconf, it names the
feature apps' endpoints (approvals, traces, advisor) beside the core's: URL plumbing only.
"""

from __future__ import annotations

from typing import Any, Callable

from django.contrib.auth.decorators import login_not_required, login_required
from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.views import APIView

from advisor.api import ExecutionFindingListApi, FindingDismissApi, FindingRestoreApi, GraphFindingListApi
from approvals.api import ApprovalDecideApi, ApprovalDetailApi, ApprovalListApi
from orchestrator.api.budgets import BudgetGetApi, BudgetUpdateApi
from orchestrator.api.executions import (
    ExecutionBudgetRaiseApi,
    ExecutionCancelApi,
    ExecutionDetailApi,
    ExecutionListApi,
    ExecutionStartApi,
)
from orchestrator.api.graphs import GraphListApi
from traces.api import ExecutionForkApi, ExecutionSpanListApi, ExecutionStepListApi

app_name = "api"


def one_path(*apis: type[APIView]) -> Callable[..., Any]:
    """Several single-operation APIs on one path (GET lists, POST starts): a view class
    that has each one's handler. Each handler names its own serializers, so the
    order of the bases changes nothing."""
    methods = [name for api in apis for name in ("get", "post", "put", "patch", "delete") if name in vars(api)]
    if len(methods) != len(set(methods)):
        raise ValueError(f"{[api.__name__ for api in apis]} share an HTTP method")
    return type("".join(api.__name__ for api in apis), apis, {}).as_view()


@csrf_exempt
@login_not_required
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Anything else under /api/ answers 404 in the API's error shape, not an HTML page."""
    return JsonResponse({"message": f"No API endpoint at {request.path}.", "code": "not_found", "extra": {}},
                        status=404)


@csrf_exempt
@login_not_required
def index(request: HttpRequest) -> JsonResponse:
    """``/api/v1/``: what is served here, for a person or a client finding its way."""
    return JsonResponse({
        "resources": {
            "graphs": request.build_absolute_uri("graphs/"),
            "executions": request.build_absolute_uri("executions/"),
            "approvals": request.build_absolute_uri("approvals/"),
            "budgets": request.build_absolute_uri("budgets/"),
        },
        "schema": request.build_absolute_uri("/api/schema/"),
        "docs": request.build_absolute_uri("/api/docs/"),
        "auth": "Send an API token (the Tokens page) as 'Authorization: Token <key>'.",
    })


urlpatterns = [
    path("v1/", index, name="index"),
    path("v1/graphs/", GraphListApi.as_view(), name="graphs"),
    path("v1/graphs/<str:name>/findings/", GraphFindingListApi.as_view(), name="graph_findings"),
    path("v1/graphs/<str:name>/findings/dismiss/", FindingDismissApi.as_view(), name="graph_findings_dismiss"),
    path("v1/graphs/<str:name>/findings/restore/", FindingRestoreApi.as_view(), name="graph_findings_restore"),
    path("v1/executions/", one_path(ExecutionListApi, ExecutionStartApi), name="executions"),
    path("v1/executions/<uuid:execution_id>/", ExecutionDetailApi.as_view(), name="execution"),
    path("v1/executions/<uuid:execution_id>/cancel/", ExecutionCancelApi.as_view(), name="execution_cancel"),
    path("v1/executions/<uuid:execution_id>/budget/", ExecutionBudgetRaiseApi.as_view(),
         name="execution_budget_raise"),
    path("v1/executions/<uuid:execution_id>/fork/", ExecutionForkApi.as_view(), name="execution_fork"),
    path("v1/executions/<uuid:execution_id>/steps/", ExecutionStepListApi.as_view(), name="execution_steps"),
    path("v1/executions/<uuid:execution_id>/spans/", ExecutionSpanListApi.as_view(), name="execution_spans"),
    path("v1/executions/<uuid:execution_id>/findings/", ExecutionFindingListApi.as_view(),
         name="execution_findings"),
    path("v1/approvals/", ApprovalListApi.as_view(), name="approvals"),
    path("v1/approvals/<uuid:approval_id>/", ApprovalDetailApi.as_view(), name="approval"),
    path("v1/approvals/<uuid:approval_id>/decide/", ApprovalDecideApi.as_view(), name="approval_decide"),
    path("v1/budgets/", one_path(BudgetGetApi, BudgetUpdateApi), name="budgets"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The docs page is for people in a browser: without a session, the login page.
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api:schema")), name="docs"),
    re_path(r"^", not_found),  # any path at all, even one with a newline in it
]
