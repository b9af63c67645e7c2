"""The REST API of traces: an execution's steps and spans, and forking it at a checkpoint."""

from __future__ import annotations

from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator import selectors
from orchestrator.api.executions import execution_for_output
from orchestrator.api.plumbing import PAGE_PARAMETERS, paginated, query, responses, service_validation_error, validated
from orchestrator.errors import GraphNotFound
from orchestrator.serializers import ExecutionSerializer, JsonObjectField, StrictCharField, page_of
from traces import services
from traces.models import Span, Step


class ExecutionStepListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        step = serializers.IntegerField(help_text="LangGraph's step number.")
        node = serializers.CharField(help_text="The nodes that ran, comma-separated.")
        nodes = serializers.ListField(child=serializers.CharField())
        checkpoint_id = serializers.CharField()
        parent_checkpoint_id = serializers.CharField(allow_blank=True)
        update = serializers.DictField(child=serializers.JSONField(), help_text="{node: the update it wrote}")
        diff = serializers.ListField(child=serializers.DictField(child=serializers.JSONField()),
                                     help_text="The state diff against the previous checkpoint.")
        started_at = serializers.DateTimeField()
        duration_ms = serializers.IntegerField()
        tokens = serializers.IntegerField()
        bytes_written = serializers.IntegerField()

    @extend_schema(
        operation_id="executions_steps_list",
        summary="An execution's steps, in order",
        parameters=PAGE_PARAMETERS,
        responses=responses({200: page_of(OutputSerializer)}, 400, 404),
        tags=["traces"],
    )
    def get(self, request: Request, execution_id: UUID) -> Response:
        execution = selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
        steps = Step.objects.filter(execution=execution).order_by("step", "id")
        return paginated(request, self, steps, ExecutionStepListApi.OutputSerializer)


class ExecutionSpanListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Span.Kind.choices, required=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        parent = serializers.UUIDField(source="parent_id", allow_null=True)
        kind = serializers.ChoiceField(choices=Span.Kind.choices)
        name = serializers.CharField()
        status = serializers.ChoiceField(choices=Span.Status.choices)
        step = serializers.IntegerField(allow_null=True)
        model = serializers.CharField(allow_blank=True)
        input = serializers.JSONField(allow_null=True)
        output = serializers.JSONField(allow_null=True)
        error = serializers.JSONField(allow_null=True)
        input_tokens = serializers.IntegerField()
        output_tokens = serializers.IntegerField()
        total_tokens = serializers.IntegerField()
        attributes = serializers.DictField(child=serializers.JSONField())
        started_at = serializers.DateTimeField()
        ended_at = serializers.DateTimeField(allow_null=True)
        duration_ms = serializers.IntegerField(allow_null=True)

    @extend_schema(
        operation_id="executions_spans_list",
        summary="An execution's spans (nodes, LLM and tool calls), by start time",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses=responses({200: page_of(OutputSerializer)}, 400, 404),
        tags=["traces"],
    )
    def get(self, request: Request, execution_id: UUID) -> Response:
        filters = query(ExecutionSpanListApi.FilterSerializer, request)
        execution = selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
        spans = Span.objects.filter(execution=execution)
        if filters.get("kind"):
            spans = spans.filter(kind=filters["kind"])
        return paginated(request, self, spans.order_by("started_at", "id"), ExecutionSpanListApi.OutputSerializer)


class ExecutionForkApi(APIView):
    class InputSerializer(serializers.Serializer):
        checkpoint_id = StrictCharField(max_length=64, help_text="A checkpoint of the execution (a step's).")
        checkpoint_ns = StrictCharField(max_length=255, required=False, allow_blank=True,
                                        help_text="A subgraph's namespace; empty for the graph itself.")
        state = JsonObjectField(required=False, allow_null=True,
                                help_text="Keys of the state to change; none: a replay of the checkpoint.")
        as_node = StrictCharField(max_length=200, required=False, allow_blank=True,
                                  help_text="The node the edit is written as; default: the last one that ran.")
        decide = serializers.BooleanField(
            required=False, default=False,
            help_text="When the fork goes past a node that asks a person (a gate): count it as your decision "
                      "(reviewers and admins), settling the approval the parent waits for there and cancelling "
                      "the parent. Without it such a fork waits for a reviewer at its first checkpoint.")

    @extend_schema(
        operation_id="executions_fork",
        summary="Fork an execution at a checkpoint into a new execution",
        description="Answers 202 with the new, queued execution (its `parent` is this one). A fork that goes "
                    "past a node that asks a person waits for a reviewer there, unless `decide` makes it the "
                    "caller's decision.",
        request=InputSerializer,
        responses=responses({202: ExecutionSerializer}, 400, 403, 404, 409, 413, 429),
        tags=["traces"],
    )
    def post(self, request: Request, execution_id: UUID) -> Response:
        parent = selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
        data = validated(ExecutionForkApi.InputSerializer, request)
        try:
            fork = services.execution_fork(
                execution_id=parent.id,
                user=request.user,
                checkpoint_id=data["checkpoint_id"],
                checkpoint_ns=data.get("checkpoint_ns", ""),
                values=data.get("state"),
                as_node=data.get("as_node", ""),
                decide=data.get("decide", False),
            )
        except GraphNotFound as exc:  # the graph was removed from the registry since
            raise exceptions.ValidationError({"non_field_errors": [exc.message]}) from None
        except DjangoValidationError as exc:
            raise _fork_error(exc) from None
        url = request.build_absolute_uri(f"/api/v1/executions/{fork.id}/")
        return Response(ExecutionSerializer(execution_for_output(request, fork.id)).data,
                        status=status.HTTP_202_ACCEPTED, headers={"Location": url})


def _fork_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    """The service names the checkpoint ``checkpoint`` and state keys bare: as API fields."""
    if hasattr(exc, "error_dict") and "checkpoint" in exc.error_dict:
        exc.error_dict["checkpoint_id"] = exc.error_dict.pop("checkpoint")
    return service_validation_error(exc, fields=("checkpoint_id", "checkpoint_ns", "state", "as_node"), nest="state")
