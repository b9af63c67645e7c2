"""What every endpoint of the REST API shares: the one error shape (the exception handler, a
service's ``ValidationError`` as API fields, the documented answers), pagination, query
filters and request bodies, and the schema's component names.

DRF loads ``exception_handler`` and ``ApiAutoSchema`` from the settings while it starts, so
this module imports no resource module (and no serializer that would import DRF's
settings in turn beyond ``orchestrator.serializers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.fields import get_error_detail
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from orchestrator.errors import LoopgateError
from orchestrator.serializers import ErrorSerializer, component_name

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


def service_validation_error(exc: DjangoValidationError, *, fields: tuple[str, ...] = (), nest: str,
                             rename: dict[str, str] | None = None) -> exceptions.ValidationError:
    """A service's ``ValidationError`` with its keys as API field names: keys that are
    not fields of the request are inside ``nest`` (an input key → ``input.<key>``),
    under their API name when ``rename`` gives one (``graph_name`` → ``graph``)."""
    if not hasattr(exc, "error_dict"):
        return exceptions.ValidationError({nest: get_error_detail(exc)})
    rename = rename or {}
    detail: dict[str, Any] = {}
    for key, errors in get_error_detail(exc).items():
        if key in fields:
            name = key
        elif key in ("__all__", "non_field_errors"):
            name = nest
        else:
            name = f"{nest}.{rename.get(key, key)}"
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


def paginated(request: Request, view: APIView, items: Any, serializer: type[serializers.Serializer], *,
              page_context: Callable[[list[Any]], dict[str, Any]] | None = None, **context: Any) -> Response:
    """One page of ``items`` as ``serializer`` writes them. ``page_context(page)`` adds to the
    serializer's context what it can read for the whole page at once (one query, not one a row)."""
    paginator = ApiPagination()
    page = paginator.paginate_queryset(items, request, view=view)
    if page_context is not None:
        context.update(page_context(page))
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


# --- request bodies ----------------------------------------------------------------------------------


def validated(serializer: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The validated JSON body: anything but an object, or a bad field, is a 400."""
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    data = serializer(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)
