"""The REST API of executions: list, start, read, cancel, and raise the budget of one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator import budgets, selectors, services
from orchestrator.accounting import execution_costs
from orchestrator.api.plumbing import PAGE_PARAMETERS, paginated, query, responses, service_validation_error, validated
from orchestrator.errors import GraphNotFound
from orchestrator.models import Execution
from orchestrator.serializers import (
    BIGINT_MAX,
    ExecutionSerializer,
    ExecutionSummarySerializer,
    GraphNameField,
    JsonObjectField,
    StrictIntegerField,
    executions_for_output,
    page_of,
)

class ExecutionListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        graph = serializers.CharField(required=False, max_length=200, help_text="Only this graph's executions.")
        status = serializers.ChoiceField(choices=Execution.Status.choices, required=False)
        created_after = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive.")
        created_before = serializers.DateTimeField(required=False, help_text="ISO 8601; exclusive.")

    @extend_schema(
        operation_id="executions_list",
        summary="List executions, newest first",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        description="Summaries: each execution without its input and state (`GET /api/v1/executions/{id}/` has "
                    "them).",
        responses=responses({200: page_of(ExecutionSummarySerializer)}, 400, 404),
        tags=["executions"],
    )
    def get(self, request: Request) -> Response:
        filters = query(ExecutionListApi.FilterSerializer, request)
        executions = selectors.execution_list_for_user(user=request.user)
        if filters.get("graph"):
            executions = executions.filter(graph_name=filters["graph"])
        if filters.get("status"):
            executions = executions.filter(status=filters["status"])
        if filters.get("created_after"):
            executions = executions.filter(created_at__gte=filters["created_after"])
        if filters.get("created_before"):
            executions = executions.filter(created_at__lt=filters["created_before"])
        listed = executions_for_output(executions.order_by("-created_at", "-id")).defer("input", "state")
        return paginated(request, self, listed, ExecutionSummarySerializer, page_context=_page_costs)


class ExecutionStartApi(APIView):
    class InputSerializer(serializers.Serializer):
        graph = GraphNameField(help_text="The name of a registered graph.")
        input = JsonObjectField(required=False, help_text="The graph's input; its state schema checks it.")
        token_budget = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=BIGINT_MAX,
                                          help_text="Tokens the execution may use; default: the budgets.")
        recursion_limit = StrictIntegerField(required=False, allow_null=True, min_value=1,
                                             max_value=services.MAX_RECURSION_LIMIT,
                                             help_text="Most super-steps it may take; default: the graph's.")

    @extend_schema(
        operation_id="executions_start",
        summary="Start an execution of a graph",
        description="Answers 202 at once with the queued execution; poll it (or its steps) until it ends.",
        request=InputSerializer,
        responses=responses({202: ExecutionSerializer}, 400, 403, 409, 413, 429),
        tags=["executions"],
    )
    def post(self, request: Request) -> Response:
        data = validated(ExecutionStartApi.InputSerializer, request)
        try:
            execution = services.execution_start(
                graph_name=data["graph"],
                input=data.get("input", {}),
                user=request.user,
                token_budget=data.get("token_budget"),
                recursion_limit=data.get("recursion_limit"),
                require_input_keys=True,
            )
        except GraphNotFound as exc:
            raise exceptions.ValidationError({"graph": [exc.message]}) from None
        except DjangoValidationError as exc:
            raise service_validation_error(exc, fields=("graph", "input", "token_budget", "recursion_limit"),
                                           nest="input") from None
        started = execution
        execution = executions_for_output(Execution.objects.filter(id=started.id)).get()
        # A fast worker may already have claimed it: answer with the execution
        # as this request left it (queued), as the 202 promises.
        for field in ("status", "started_at", "finished_at", "tokens_used", "step_count", "state", "error"):
            setattr(execution, field, getattr(started, field))
        url = request.build_absolute_uri(f"/api/v1/executions/{execution.id}/")
        return Response(ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class ExecutionDetailApi(APIView):
    @extend_schema(
        operation_id="executions_retrieve",
        summary="One execution",
        responses=responses({200: ExecutionSerializer}, 404),
        tags=["executions"],
    )
    def get(self, request: Request, execution_id: UUID) -> Response:
        execution = execution_for_output(request, execution_id)
        return Response(ExecutionSerializer(execution).data)


class ExecutionCancelApi(APIView):
    @extend_schema(
        operation_id="executions_cancel",
        summary="Cancel an execution",
        description="A queued or waiting execution stops at once; a running one at its next step.",
        request=None,
        responses=responses({200: ExecutionSerializer}, 403, 404, 409),
        tags=["executions"],
    )
    def post(self, request: Request, execution_id: UUID) -> Response:
        execution = selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
        services.execution_cancel(execution_id=execution.id, user=request.user)
        return Response(ExecutionSerializer(execution_for_output(request, execution.id)).data)


class ExecutionBudgetRaiseApi(APIView):
    class InputSerializer(serializers.Serializer):
        token_budget = serializers.IntegerField(min_value=1, max_value=10**12,  # budgets.MAX_TOKEN_BUDGET
                                                help_text="The new budget; more than the tokens used.")

    @extend_schema(
        operation_id="executions_budget_raise",
        summary="Raise the budget of an execution stopped over budget, and resume it (admins)",
        description="It continues from its last checkpoint. 409 when it is not over budget.",
        request=InputSerializer,
        responses=responses({202: ExecutionSerializer}, 400, 403, 404, 409),
        tags=["executions"],
    )
    def post(self, request: Request, execution_id: UUID) -> Response:
        execution = selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
        data = validated(ExecutionBudgetRaiseApi.InputSerializer, request)
        try:
            budgets.execution_budget_raise(execution_id=execution.id, user=request.user,
                                           token_budget=data["token_budget"])
        except DjangoValidationError as exc:
            raise service_validation_error(exc, fields=("token_budget",), nest="token_budget") from None
        return Response(ExecutionSerializer(execution_for_output(request, execution.id)).data,
                        status=status.HTTP_202_ACCEPTED)


def execution_for_output(request: Request, execution_id: UUID) -> Execution:
    """The execution the user may see, with what ``ExecutionSerializer`` reads; 404 otherwise."""
    execution = selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
    return executions_for_output(Execution.objects.filter(id=execution.id)).get()


def _page_costs(page: list[Execution]) -> dict[str, Any]:
    """The cost of a page of executions in one query (``ExecutionSerializer`` reads ``costs``)."""
    return {"costs": execution_costs([execution.id for execution in page])}
