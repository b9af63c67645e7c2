"""Dismiss a finding for a graph, or undo that: forms in the advisor's panels (htmx swaps the panel back)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from advisor import panels, selectors, services
from orchestrator import htmx, params
from orchestrator import selectors as core_selectors
from orchestrator.errors import GraphNotFound, PermissionDenied
from orchestrator.types import AuthedRequest


def _answer(request: AuthedRequest, graph_name: str, execution_id: UUID | None, *, error: str = ""
            ) -> HttpResponse:
    """The panel again for htmx (on the page it came from, with the error in it), else back to that page
    (the error at its top)."""
    execution = (core_selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
                 if execution_id else None)
    if not htmx.is_htmx(request):
        if error:
            messages.error(request, error)
        if execution is not None:
            return redirect(reverse("traces:execution", args=[execution.id]) + "#advisor")
        return redirect(reverse("graphs") + f"#advisor-graph-{slugify(graph_name)}")
    if execution is not None:
        advice = selectors.execution_advice(execution=execution)
    else:
        advice = selectors.graph_advice(graph_name=graph_name)
    ctx = {**panels.panel_context(request, advice, execution=execution), "error": error}
    return render(request, "advisor/partials/panel.html", ctx, status=422 if error else 200)


def _change(request: AuthedRequest, graph_name: str, *, dismiss: bool) -> HttpResponse:
    key = params.param_text(request.POST, "key", max_length=300)
    execution_id = params.param_uuid(request.POST, "execution")  # the page the form is on, if an execution's
    try:
        if dismiss:
            title = params.param_text(request.POST, "title", max_length=300)
            services.finding_dismiss(graph_name=graph_name, key=key, user=request.user, title=title)
        else:
            services.finding_restore(graph_name=graph_name, key=key, user=request.user)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    except GraphNotFound as exc:
        raise Http404(exc.message) from None
    except ValidationError as exc:
        return _answer(request, graph_name, execution_id, error=" ".join(exc.messages))
    return _answer(request, graph_name, execution_id)


@require_POST
def finding_dismiss(request: AuthedRequest, name: str) -> HttpResponse:
    return _change(request, name, dismiss=True)


@require_POST
def finding_restore(request: AuthedRequest, name: str) -> HttpResponse:
    return _change(request, name, dismiss=False)
