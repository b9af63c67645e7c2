"""Shapes the REST API shares between endpoints: errors, pages, executions, strict input fields.

Each endpoint's own input and output live nested in its ``<Noun><Verb>Api``
(``orchestrator/api/``, ``approvals/api.py``, ``traces/api.py``); only what
several of them return is here.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orchestrator.models import Execution

BIGINT_MAX = 2**63 - 1  # the database's bigint: larger numbers would fail on save, not validate
MICRO = Decimal("0.000001")


# --- strict input fields ---------------------------------------------------------------------------
# DRF's fields coerce ("12" → 12, 12 → "12", an integer → a UUID): the API takes
# the JSON types its schema says and refuses the rest with 400.


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class GraphNameField(StrictCharField):
    """The name of a registered graph; the schema lists the names (an enum made when it is served)."""

    def __init__(self, *, include_broken: bool = False, **kwargs: Any) -> None:
        self.include_broken = include_broken
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)


class GraphNameFieldExtension(OpenApiSerializerFieldExtension):
    target_class = GraphNameField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        from orchestrator import registry

        field = self.target
        names = [e.name for e in registry.all_entries() if field.include_broken or not e.is_broken]
        return {"type": "string", "enum": names} if names else {"type": "string"}


def _storable_problem(value: Any, path: str = "", depth: int = 0) -> str:
    """Why a JSON value cannot be stored (NUL or unpaired surrogates in text); "" when it can."""
    if depth > 100:
        return f"{path or 'the value'} is nested too deeply."
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path or 'a string'} contains a NUL character."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path or 'a string'} is not valid Unicode."
        return ""
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _storable_problem(key, f"{path}.{key}" if path else "a key", depth + 1) or _storable_problem(
                item, f"{path}.{key}" if path else str(key), depth + 1
            )
            if problem:
                return problem
        return ""
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = _storable_problem(item, f"{path}[{index}]", depth + 1)
            if problem:
                return problem
    return ""


class JsonObjectField(serializers.DictField):
    """A JSON object, kept as given (no coercion of its values), that the database can store."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.JSONField())
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        problem = _storable_problem(data)
        if problem:
            raise serializers.ValidationError(problem)
        return data


# --- errors and pages -----------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error the API answers: a message for people, a stable code for programs, details."""

    message = serializers.CharField()
    code = serializers.CharField()
    extra = serializers.DictField(child=serializers.JSONField(), help_text="Details; `fields` names bad inputs.")

    class Meta:
        ref_name = "Error"


def component_name(serializer: type[serializers.Serializer]) -> str | None:
    """The schema component a serializer is shown as: its ``Meta.ref_name``, or for one nested
    in an API, the API and its own name (``ExecutionStartApi.InputSerializer`` →
    ``ExecutionStartInput``), so that every operation's bodies are components of their own."""
    ref_name = getattr(getattr(serializer, "Meta", None), "ref_name", None)
    if ref_name:
        return str(ref_name)
    parts = serializer.__qualname__.split(".")
    if len(parts) > 1 and parts[0].endswith("Api") and "<locals>" not in parts:
        return parts[0].removesuffix("Api") + "".join(part.removesuffix("Serializer") for part in parts[1:])
    return None


@lru_cache(maxsize=None)
def page_of(serializer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The paginated list of ``serializer``, for the schema: count, next, previous, results."""
    name = component_name(serializer) or serializer.__name__.removesuffix("Serializer")

    class Meta:
        ref_name = f"Paginated{name}List"

    return type(
        f"Paginated{name}ListSerializer",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer(many=True),
            "Meta": Meta,
        },
    )


# --- executions: returned by start, list, detail, cancel and fork ----------------------------------


class ExecutionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    graph = serializers.CharField(source="graph_name")
    graph_version = serializers.CharField()
    status = serializers.ChoiceField(choices=Execution.Status.choices)
    input = serializers.DictField(child=serializers.JSONField())
    state = serializers.JSONField(allow_null=True, help_text="The last known state (JSON).")
    error = serializers.DictField(
        child=serializers.JSONField(), allow_null=True, help_text="{type, message, traceback, node, reason}"
    )
    tokens_used = serializers.IntegerField()
    token_budget = serializers.IntegerField(allow_null=True)
    cost = serializers.SerializerMethodField(help_text="What its LLM calls cost at the configured prices.")
    currency = serializers.SerializerMethodField()
    parent = serializers.UUIDField(source="parent_id", allow_null=True, help_text="The execution this forked.")
    forked_from_checkpoint = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    pending_approvals = serializers.SerializerMethodField(help_text="Ids of its approvals waiting for a decision.")

    class Meta:
        ref_name = "Execution"

    @extend_schema_field(serializers.DecimalField(max_digits=30, decimal_places=6, allow_null=True))
    def get_cost(self, execution: Execution) -> str | None:
        from orchestrator.accounting import execution_cost

        # Lists pass every row's cost, computed in one query (see ExecutionListApi).
        costs = self.context.get("costs")
        cost = costs[execution.id] if costs is not None and execution.id in costs else execution_cost(execution)
        return None if cost is None else str(cost.quantize(MICRO))

    def get_currency(self, execution: Execution) -> str:
        from django.conf import settings

        return str(getattr(settings, "LOOPGATE_CURRENCY", "USD"))

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_pending_approvals(self, execution: Execution) -> list[str]:
        prefetched = getattr(execution, "pending_approval_ids", None)
        if prefetched is not None:
            return [str(approval.id) for approval in prefetched]
        return [str(i) for i in execution.approvals.filter(status="pending").order_by("created_at")
                .values_list("id", flat=True)]


class ExecutionSummarySerializer(ExecutionSerializer):
    """An execution in a list: everything but its input and state, which can be large (the detail has them)."""

    input = None
    state = None

    class Meta:
        ref_name = "ExecutionSummary"


def executions_for_output(queryset: Any) -> Any:
    """The queryset with what ``ExecutionSerializer`` reads fetched in bulk (no query per row)."""
    from django.db.models import Prefetch

    # The approvals app's rows, through the reverse relation (the core imports no feature app).
    approval_model = Execution._meta.get_field("approvals").related_model
    pending = approval_model.objects.filter(status="pending").only("id", "execution_id").order_by("created_at")
    return queryset.select_related("created_by").prefetch_related(
        Prefetch("approvals", queryset=pending, to_attr="pending_approval_ids")
    )
