"""The REST API of the advisor: a graph's and an execution's findings, and dismissing them per graph.

The same selectors and services as the panels; findings are computed when asked (``advisor.selectors``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from advisor import rules, selectors, services
from orchestrator import selectors as core_selectors
from orchestrator.api.plumbing import responses, service_validation_error, validated
from orchestrator.serializers import StrictCharField

KEY_HELP = "The finding's key, <kind>:<subject> (e.g. whole_state:reports), as the findings list gives it."


class PointSerializer(serializers.Serializer):
    step = serializers.IntegerField(help_text="LangGraph's step number.")
    bytes = serializers.IntegerField(help_text="Bytes the channel's write stored at that step (compact JSON).")
    url = serializers.CharField(help_text="The step's page.")


class FindingSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="What a dismissal names: <kind>:<subject>.")
    kind = serializers.ChoiceField(choices=rules.KINDS)
    subject = serializers.CharField(help_text="The channel, node or loop it is about.")
    title = serializers.CharField()
    evidence = serializers.CharField(help_text="What the trace shows, in a sentence or two (plain text).")
    fix = serializers.CharField()
    url = serializers.CharField(help_text="The step or span that shows it (a page of Loopgate).")
    execution = serializers.UUIDField(help_text="The execution whose trace shows it.")
    growth = PointSerializer(many=True, help_text="whole_state: the bytes written at a few steps.")
    source_line = serializers.CharField(allow_blank=True, help_text="free_text: the line of code that parses text.")

    def to_representation(self, finding: rules.Finding) -> dict[str, Any]:
        absolute = self.context["request"].build_absolute_uri
        return {
            "key": finding.key, "kind": finding.kind, "subject": finding.subject, "title": finding.title,
            "evidence": finding.evidence, "fix": finding.fix, "url": absolute(finding.href),
            "execution": finding.execution_id, "source_line": finding.source_line,
            "growth": [{"step": p.step, "bytes": p.bytes, "url": absolute(p.href)} for p in finding.growth],
        }


class DismissalSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    dismissed_by = serializers.CharField(source="dismissed_by_name", allow_blank=True)
    dismissed_at = serializers.DateTimeField()


class AdviceSerializer(serializers.Serializer):
    graph = serializers.CharField(source="graph_name")
    executions_seen = serializers.IntegerField(help_text="How many recorded executions were read.")
    findings = FindingSerializer(many=True, help_text="Findings not dismissed for the graph.")
    dismissed = serializers.SerializerMethodField()

    def get_dismissed(self, advice: selectors.Advice) -> list[dict[str, Any]]:
        return [DismissalSerializer(d).data for _, d in advice.dismissed]


def _advice(request: Request, advice: selectors.Advice) -> Response:
    return Response(AdviceSerializer(advice, context={"request": request}).data)


class GraphFindingListApi(APIView):
    @extend_schema(
        operation_id="graphs_findings_list",
        summary="The advisor's findings for a graph",
        description=f"Read from the graph's {selectors.RECENT} latest stopped executions when asked (nothing is "
                    "computed while graphs run); one finding per key, with the newest execution's evidence.",
        responses=responses({200: AdviceSerializer}, 404),
        tags=["advisor"],
    )
    def get(self, request: Request, name: str) -> Response:
        name = selectors.graph_name_for_user(user=request.user, name=name)
        return _advice(request, selectors.graph_advice(graph_name=name))


class ExecutionFindingListApi(APIView):
    @extend_schema(
        operation_id="executions_findings_list",
        summary="The advisor's findings in one execution's trace",
        responses=responses({200: AdviceSerializer}, 404),
        tags=["advisor"],
    )
    def get(self, request: Request, execution_id: UUID) -> Response:
        execution = core_selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
        return _advice(request, selectors.execution_advice(execution=execution))


class FindingDismissApi(APIView):
    class InputSerializer(serializers.Serializer):
        key = StrictCharField(max_length=300, help_text=KEY_HELP)
        title = StrictCharField(max_length=300, required=False, allow_blank=True,
                                help_text="What the finding said, kept with the dismissal.")

    @extend_schema(
        operation_id="graphs_findings_dismiss",
        summary="Dismiss a finding for every execution of a graph",
        description="Operators and admins. Records who and when; dismissing it again returns the same dismissal.",
        request=InputSerializer,
        responses=responses({201: DismissalSerializer}, 400, 403, 404),
        tags=["advisor"],
    )
    def post(self, request: Request, name: str) -> Response:
        name = selectors.graph_name_for_user(user=request.user, name=name)
        data = validated(FindingDismissApi.InputSerializer, request)
        try:
            dismissal = services.finding_dismiss(graph_name=name, key=data["key"], user=request.user,
                                                 title=data.get("title", ""))
        except DjangoValidationError as exc:
            raise service_validation_error(exc, fields=("key",), nest="key") from None
        return Response(DismissalSerializer(dismissal).data, status=status.HTTP_201_CREATED)


class FindingRestoreApi(APIView):
    class InputSerializer(serializers.Serializer):
        key = StrictCharField(max_length=300, help_text=KEY_HELP)

    class OutputSerializer(serializers.Serializer):
        restored = serializers.BooleanField(help_text="False when the finding was not dismissed.")

    @extend_schema(
        operation_id="graphs_findings_restore",
        summary="Undo a dismissal: the finding shows again",
        request=InputSerializer,
        responses=responses({200: OutputSerializer}, 400, 403, 404),
        tags=["advisor"],
    )
    def post(self, request: Request, name: str) -> Response:
        name = selectors.graph_name_for_user(user=request.user, name=name)
        data = validated(FindingRestoreApi.InputSerializer, request)
        try:
            restored = services.finding_restore(graph_name=name, key=data["key"], user=request.user)
        except DjangoValidationError as exc:
            raise service_validation_error(exc, fields=("key",), nest="key") from None
        return Response({"restored": restored})
