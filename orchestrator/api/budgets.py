"""The REST API of token budgets: the default and each graph's budget and daily limit (admins)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator import budgets, registry, roles
from orchestrator.api.plumbing import responses, service_validation_error, validated
from orchestrator.models import BudgetDefault, GraphBudget
from orchestrator.serializers import GraphNameField, StrictIntegerField

class BudgetSerializer(serializers.Serializer):
    """The budgets as admins set them, and what new executions of each graph get."""

    class GraphSerializer(serializers.Serializer):
        graph = serializers.CharField()
        token_budget = serializers.IntegerField(allow_null=True, help_text="Per execution; null: the default.")
        daily_token_limit = serializers.IntegerField(allow_null=True, help_text="Per day, all executions; null: none.")
        effective_token_budget = serializers.IntegerField(help_text="What a new execution gets when none is given.")
        tokens_today = serializers.IntegerField(help_text="Used today by executions started today.")

        class Meta:
            ref_name = "GraphBudget"

    default_token_budget = serializers.IntegerField(help_text="Per execution, unless its graph says otherwise.")
    default_source = serializers.ChoiceField(choices=["default", "setting"],
                                             help_text="`setting`: LOOPGATE_DEFAULT_TOKEN_BUDGET, never changed here.")
    graphs = GraphSerializer(many=True)

    class Meta:
        ref_name = "Budgets"


def budgets_for_output() -> dict[str, Any]:
    rows = {row.graph_name: row for row in GraphBudget.objects.all()}
    names = [entry.name for entry in registry.all_entries()]
    names += sorted(set(rows) - set(names))  # budgets of graphs since removed stay visible
    graphs = []
    for name in names:
        row = rows.get(name)
        graphs.append({
            "graph": name,
            "token_budget": row.token_budget if row else None,
            "daily_token_limit": row.daily_token_limit if row else None,
            "effective_token_budget": budgets.graph_effective_budget(name, graph_budget=row).token_budget,
            "tokens_today": budgets.graph_tokens_today(name),
        })
    has_default = BudgetDefault.objects.filter(id=BudgetDefault.SINGLETON_ID).exists()
    return {
        "default_token_budget": budgets.default_token_budget(),
        "default_source": "default" if has_default else "setting",
        "graphs": graphs,
    }


class BudgetGetApi(APIView):
    @extend_schema(
        operation_id="budgets_retrieve",
        summary="The token budgets (admins)",
        responses=responses({200: BudgetSerializer}, 403),
        tags=["budgets"],
    )
    def get(self, request: Request) -> Response:
        if not roles.is_admin(request.user):
            raise exceptions.PermissionDenied("Only admins may read and change budgets.")
        return Response(BudgetSerializer(budgets_for_output()).data)


class BudgetUpdateApi(APIView):
    class InputSerializer(serializers.Serializer):
        class GraphSerializer(serializers.Serializer):
            graph = GraphNameField(include_broken=True)
            token_budget = StrictIntegerField(allow_null=True, min_value=0, max_value=10**12,
                                              help_text="Per execution; null: the default.")
            daily_token_limit = StrictIntegerField(allow_null=True, min_value=0, max_value=10**12,
                                                   help_text="Per day; null: no limit.")

        default_token_budget = StrictIntegerField(required=False, min_value=0, max_value=10**12,
                                                  help_text="Omit to keep it.")
        graphs = GraphSerializer(many=True, required=False, help_text="Graphs not listed keep their budgets.")

        def validate_graphs(self, graphs: list[dict[str, Any]]) -> list[dict[str, Any]]:
            names = [graph["graph"] for graph in graphs]
            if len(names) != len(set(names)):
                raise serializers.ValidationError("Name each graph once.")
            return graphs

    @extend_schema(
        operation_id="budgets_update",
        summary="Set the default budget and graphs' budgets and daily limits (admins)",
        description="All or nothing: one bad value and nothing changes. Every change is logged.",
        request=InputSerializer,
        responses=responses({200: BudgetSerializer}, 400, 403, 413),
        tags=["budgets"],
    )
    def put(self, request: Request) -> Response:
        if not roles.is_admin(request.user):
            raise exceptions.PermissionDenied("Only admins may read and change budgets.")
        data = validated(BudgetUpdateApi.InputSerializer, request)
        # One transaction around the services' own: a bad graph further down the
        # list leaves the default and the graphs before it unchanged too.
        with transaction.atomic():
            if data.get("default_token_budget") is not None:
                budgets.budget_set_default(user=request.user, token_budget=data["default_token_budget"])
            for index, graph in enumerate(data.get("graphs", [])):
                try:
                    budgets.graph_budget_set(user=request.user, graph_name=graph["graph"],
                                             token_budget=graph["token_budget"],
                                             daily_token_limit=graph["daily_token_limit"])
                except DjangoValidationError as exc:
                    raise service_validation_error(exc, nest=f"graphs.{index}", rename={"graph_name": "graph"}) from None
        return Response(BudgetSerializer(budgets_for_output()).data)
