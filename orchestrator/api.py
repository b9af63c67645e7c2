"""The REST API's core: graphs, executions, budgets, and the plumbing every endpoint shares
(the one exception handler, pagination, schema naming).

One ``APIView`` per operation, ``<Noun><Verb>Api``, with its ``InputSerializer`` /
``OutputSerializer`` nested; each calls the same services and selectors as the
pages, so roles are enforced in one place. Approvals are in ``approvals/api.py``,
steps, spans and forks in ``traces/api.py``, the URLs in ``orchestrator/api_urls.py``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.fields import get_error_detail
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from orchestrator import registry, roles, selectors, services
from orchestrator.errors import GraphNotFound, LoopgateError
from orchestrator.models import Execution
from orchestrator.serializers import (
    BIGINT_MAX,
    component_name,
    ErrorSerializer,
    ExecutionSerializer,
    GraphNameField,
    JsonObjectField,
    StrictIntegerField,
    executions_for_output,
    page_of,
)

# --- errors ------------------------------------------------------------------------------------------


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"input.account": ["..."], "decisions.0.type": [...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                path = prefix or "non_field_errors"  # about the object itself, not one of its fields
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            if detail:
                out.setdefault(prefix, []).extend(str(item) for item in detail)
        else:
            for index, value in enumerate(detail):
                out.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.setdefault(prefix, []).append(str(detail))
    return out


def _message(fields: dict[str, list[str]]) -> str:
    parts = [f"{name}: {' '.join(messages)}" if name not in ("", "non_field_errors") else " ".join(messages)
             for name, messages in fields.items()]
    return " ".join(parts) or "Invalid input."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as ``{"message", "code", "extra"}``, with the right status.

    Services raise ``LoopgateError`` (its own status and code) and Django's
    ``ValidationError`` (naming the field); DRF raises its own. Anything else is
    a bug: it is not caught here, so it is logged and answered 500.
    """
    if isinstance(exc, LoopgateError):
        set_rollback()
        return Response({"message": exc.message, "code": exc.code, "extra": exc.extra}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=get_error_detail(exc))
    elif isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    if isinstance(exc, exceptions.ValidationError):
        fields = {name or "non_field_errors": messages for name, messages in _flatten(exc.detail).items()}
        body = {"message": _message(fields), "code": "invalid", "extra": {"fields": fields}}
    else:
        detail = exc.detail
        text = str(detail) if not isinstance(detail, (dict, list)) else _message(_flatten(detail))
        code = getattr(detail, "code", None) or exc.default_code
        body = {"message": text, "code": str(code), "extra": {}}
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def service_validation_error(exc: DjangoValidationError, *, fields: tuple[str, ...], nest: str) -> exceptions.ValidationError:
    """A service's ``ValidationError`` with its keys as API field names: keys that are
    not fields of the request are inside ``nest`` (an input key → ``input.<key>``)."""
    if not hasattr(exc, "error_dict"):
        return exceptions.ValidationError({nest: get_error_detail(exc)})
    detail: dict[str, Any] = {}
    for key, errors in get_error_detail(exc).items():
        name = key if key in fields else nest if key in ("__all__", "non_field_errors") else f"{nest}.{key}"
        detail[name] = errors
    return exceptions.ValidationError(detail)


def responses(ok: dict[int, Any], *errors: int) -> dict[int, Any]:
    """An operation's documented answers: its successes, and errors in the one error shape."""
    descriptions = {
        400: "Invalid input: `extra.fields` names each bad field.",
        401: "No or bad credentials: send `Authorization: Token <key>`.",
        403: "Your role may not do this.",
        404: "No such object (or you may not see it).",
        409: "The object is not in a state that allows this.",
        413: "The request body is over the size limit.",
        429: "The graph's daily token limit is used up for today.",
    }
    out = dict(ok)
    for code in sorted({401, *errors}):
        out[code] = OpenApiResponse(ErrorSerializer, description=descriptions[code])
    return out


# --- pages -------------------------------------------------------------------------------------------


class ApiPagination(PageNumberPagination):
    """Page numbers; a malformed ``page`` or ``page_size`` is a 400, a page past the end a 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        raw = request.query_params.get(self.page_query_param, 1)
        if raw in self.last_page_strings:
            return raw
        return _positive(raw, self.page_query_param)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = _positive(raw, self.page_size_query_param)
        if size > self.max_page_size:
            raise exceptions.ValidationError({self.page_size_query_param: [f"At most {self.max_page_size}."]})
        return size


def _positive(raw: Any, name: str) -> int:
    try:
        value = int(str(raw), 10)
    except ValueError:
        raise exceptions.ValidationError({name: ["Expected a whole number of 1 or more."]}) from None
    if value < 1 or str(raw).strip() != str(raw):
        raise exceptions.ValidationError({name: ["Expected a whole number of 1 or more."]})
    return value


PAGE_PARAMETERS = [
    OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="Page number, from 1."),
    OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": ApiPagination.max_page_size},
                     description=f"Items per page (default {ApiPagination.page_size})."),
]


def paginated(request: Request, view: APIView, items: Any, serializer: type[serializers.Serializer],
              **context: Any) -> Response:
    paginator = ApiPagination()
    page = paginator.paginate_queryset(items, request, view=view)
    if serializer is ExecutionSerializer:
        from orchestrator.accounting import execution_costs

        context["costs"] = execution_costs([execution.id for execution in page])
    data = serializer(page, many=True, context={"request": request, **context}).data
    return paginator.get_paginated_response(data)


def query(serializer: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Validated query parameters (filters): a bad value is a 400 naming it.

    DRF would take an empty ``?status=`` as absent; the schema says a filter has
    a value, so an empty one is refused like any other bad value.
    """
    blank = {name: ["Give a value, or leave the parameter out."] for name in serializer().fields
             if "" in request.query_params.getlist(name)}
    if blank:
        raise exceptions.ValidationError(blank)
    filters = serializer(data=request.query_params)
    filters.is_valid(raise_exception=True)
    return dict(filters.validated_data)


# --- schema naming -----------------------------------------------------------------------------------


class ApiAutoSchema(AutoSchema):
    """Names nested serializers after their API (``serializers.component_name``)."""

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        return component_name(type(serializer)) or super().get_serializer_name(serializer, direction)


# --- graphs ------------------------------------------------------------------------------------------


class GraphListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class EdgeSerializer(serializers.Serializer):
            source = serializers.CharField()
            target = serializers.CharField()
            conditional = serializers.BooleanField()

        name = serializers.CharField()
        version = serializers.CharField(help_text="A hash of the graph's source: which code runs it.")
        description = serializers.CharField()
        nodes = serializers.ListField(child=serializers.CharField())
        edges = serializers.SerializerMethodField()
        mermaid = serializers.CharField(help_text="The diagram, as LangGraph draws it in mermaid.")
        input_schema = serializers.DictField(child=serializers.JSONField(), help_text="JSON schema of the input.")
        example_input = serializers.DictField(child=serializers.JSONField())
        error = serializers.CharField(allow_null=True, help_text="Why the graph cannot be loaded; null when it can.")

        @extend_schema_field(EdgeSerializer(many=True))
        def get_edges(self, entry: registry.GraphEntry) -> list[dict[str, Any]]:
            return [{"source": s, "target": t, "conditional": c} for s, t, c in entry.edges]

    @extend_schema(
        operation_id="graphs_list",
        summary="List the registered graphs",
        parameters=PAGE_PARAMETERS,
        responses=responses({200: page_of(OutputSerializer)}, 400, 404),
        tags=["graphs"],
    )
    def get(self, request: Request) -> Response:
        if not roles.user_roles(request.user):
            entries: list[registry.GraphEntry] = []
        else:
            entries = registry.all_entries()
        return paginated(request, self, entries, self.OutputSerializer)


# --- executions --------------------------------------------------------------------------------------


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
        responses=responses({200: page_of(ExecutionSerializer)}, 400, 404),
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
        return paginated(request, self, executions_for_output(executions.order_by("-created_at", "-id")),
                         ExecutionSerializer)


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
        token_budget = serializers.IntegerField(min_value=1, help_text="The new budget; more than the tokens used.")

    @extend_schema(
        operation_id="executions_budget_raise",
        summary="Raise the budget of an execution stopped over budget, and resume it (admins)",
        description="It continues from its last checkpoint. 409 when it is not over budget.",
        request=InputSerializer,
        responses=responses({202: ExecutionSerializer}, 400, 403, 404, 409),
        tags=["executions"],
    )
    def post(self, request: Request, execution_id: UUID) -> Response:
        from orchestrator import budgets

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


def validated(serializer: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    data = serializer(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)



# --- budgets -----------------------------------------------------------------------------------------


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
    from orchestrator import budgets
    from orchestrator.models import BudgetDefault, GraphBudget

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
        from django.db import transaction

        from orchestrator import budgets

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
                    raise _graph_budget_error(exc, index) from None
        return Response(BudgetSerializer(budgets_for_output()).data)


def _graph_budget_error(exc: DjangoValidationError, index: int) -> exceptions.ValidationError:
    detail = get_error_detail(exc)
    if not isinstance(detail, dict):
        return exceptions.ValidationError({f"graphs.{index}": detail})
    names = {"graph_name": "graph"}
    return exceptions.ValidationError({f"graphs.{index}.{names.get(key, key)}": value for key, value in detail.items()})
