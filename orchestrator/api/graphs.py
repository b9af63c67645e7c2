"""The REST API of graphs: the registered graphs, their versions and diagrams."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator import registry, selectors
from orchestrator.api.plumbing import PAGE_PARAMETERS, paginated, responses
from orchestrator.serializers import page_of

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
        entries = selectors.graph_entries_for_user(user=request.user)
        return paginated(request, self, entries, self.OutputSerializer)
