"""The REST API of approvals: list them, decide one. Same selectors and services as the inbox."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import payloads, selectors, services
from approvals.models import Approval
from orchestrator.api.plumbing import PAGE_PARAMETERS, paginated, query, responses, service_validation_error, validated
from orchestrator.serializers import JsonObjectField, StrictCharField, page_of


class ApprovalSerializer(serializers.Serializer):
    """An approval as the list and a decision return it."""

    class ActionSerializer(serializers.Serializer):
        name = serializers.CharField()
        args = serializers.DictField(child=serializers.JSONField())
        description = serializers.CharField(allow_blank=True)
        allowed_decisions = serializers.ListField(child=serializers.ChoiceField(choices=payloads.ALL_DECISIONS))
        args_schema = serializers.DictField(
            child=serializers.JSONField(), allow_null=True, required=False,
            help_text="JSON schema edited arguments must satisfy, when the payload gives one.",
        )

        class Meta:
            ref_name = "ApprovalAction"

    id = serializers.UUIDField()
    execution = serializers.UUIDField(source="execution_id")
    graph = serializers.CharField(source="execution.graph_name")
    node = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=Approval.Status.choices)
    format = serializers.ChoiceField(choices=Approval.Format.choices)
    actions = ActionSerializer(many=True)
    created_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision = serializers.ListField(
        child=serializers.DictField(child=serializers.JSONField()), allow_null=True,
        help_text="The decisions as recorded, one per action; null while pending.",
    )
    comment = serializers.CharField(allow_blank=True)

    class Meta:
        ref_name = "Approval"

    def to_representation(self, approval: Approval) -> dict[str, Any]:
        data = super().to_representation(approval)
        # Actions are stored as the payload parser made them; show every key the schema names.
        for action in data["actions"]:
            action.setdefault("args_schema", None)
        return data


class ApprovalListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Approval.Status.choices, required=False)
        graph = serializers.CharField(required=False, max_length=200)
        execution = serializers.UUIDField(required=False, help_text="Only this execution's approvals.")

    @extend_schema(
        operation_id="approvals_list",
        summary="List approvals, newest first",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses=responses({200: page_of(ApprovalSerializer)}, 400, 404),
        tags=["approvals"],
    )
    def get(self, request: Request) -> Response:
        filters = query(ApprovalListApi.FilterSerializer, request)
        approvals = selectors.approval_list_for_user(user=request.user)
        if filters.get("status"):
            approvals = approvals.filter(status=filters["status"])
        if filters.get("graph"):
            approvals = approvals.filter(execution__graph_name=filters["graph"])
        if filters.get("execution"):
            approvals = approvals.filter(execution_id=filters["execution"])
        return paginated(request, self, approvals.order_by("-created_at", "-id"), ApprovalSerializer)


class ApprovalDetailApi(APIView):
    @extend_schema(
        operation_id="approvals_retrieve",
        summary="One approval",
        responses=responses({200: ApprovalSerializer}, 404),
        tags=["approvals"],
    )
    def get(self, request: Request, approval_id: UUID) -> Response:
        approval = selectors.approval_get_for_user(user=request.user, approval_id=approval_id)
        approval = selectors.approval_list_for_user(user=request.user).get(id=approval.id)
        return Response(ApprovalSerializer(approval).data)


class ApprovalDecideApi(APIView):
    class InputSerializer(serializers.Serializer):
        class DecisionSerializer(serializers.Serializer):
            type = serializers.ChoiceField(choices=payloads.ALL_DECISIONS)
            args = JsonObjectField(required=False, help_text="edit: the edited arguments.")
            message = StrictCharField(required=False, allow_blank=True, max_length=payloads.MAX_MESSAGE,
                                      help_text="reject: why (optional); respond: the answer.")

        decisions = DecisionSerializer(many=True, help_text="One per action, in order.")
        comment = StrictCharField(required=False, allow_blank=True, max_length=payloads.MAX_MESSAGE)

    @extend_schema(
        operation_id="approvals_decide",
        summary="Decide an approval",
        description="One decision per action, each as the action allows; the graph resumes once every "
        "pending approval of its execution is decided. 409 when someone decided first (`extra.decided_by`).",
        request=InputSerializer,
        responses=responses({200: ApprovalSerializer}, 400, 403, 404, 409, 413),
        tags=["approvals"],
    )
    def post(self, request: Request, approval_id: UUID) -> Response:
        # The role first: a forged request by an operator learns nothing more than "no".
        approval = selectors.approval_get_for_user(user=request.user, approval_id=approval_id, write=True)
        data = validated(ApprovalDecideApi.InputSerializer, request)
        try:
            approval = services.approval_decide(
                approval_id=approval.id,
                user=request.user,
                decisions=[dict(decision) for decision in data["decisions"]],
                comment=data.get("comment", ""),
            )
        except DjangoValidationError as exc:
            raise service_validation_error(exc, fields=("comment",), nest="decisions") from None
        approval = selectors.approval_list_for_user(user=request.user).get(id=approval.id)
        return Response(ApprovalSerializer(approval).data)
