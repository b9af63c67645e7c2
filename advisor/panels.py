"""The advisor's panels on pages it does not own (registered in ``apps.py``, shown by ``{% page_panels %}``):
under each graph's card on the Graphs page, and on each execution's page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.text import slugify

from advisor import selectors
from orchestrator import roles
from orchestrator.models import Execution


def panel_context(request: HttpRequest | None, advice: selectors.Advice, *, execution: Execution | None = None
                  ) -> dict[str, Any]:
    user = getattr(request, "user", None)
    where = f"execution-{execution.id}" if execution is not None else f"graph-{slugify(advice.graph_name)}"
    return {"advice": advice, "execution": execution, "panel_id": f"advisor-{where}",
            "can_dismiss": user is not None and roles.can_operate(user)}


def graph_panel(request: HttpRequest | None, *, entry: Any) -> str:
    if entry.is_broken:
        return ""
    advice = selectors.graph_advice(graph_name=entry.name)
    return render_to_string("advisor/partials/panel.html", panel_context(request, advice), request=request)


def execution_panel(request: HttpRequest | None, *, execution: Execution) -> str:
    advice = selectors.execution_advice(execution=execution)
    if not advice.findings and not advice.dismissed:
        return ""  # a clean run says nothing: the page stays about the run
    ctx = panel_context(request, advice, execution=execution)
    return render_to_string("advisor/partials/panel.html", ctx, request=request)
