from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from orchestrator import htmx, registry, roles, services
from orchestrator.errors import GraphBroken, GraphNotFound, PermissionDenied
from orchestrator.types import AuthedRequest


@require_GET
def home(request: AuthedRequest) -> HttpResponse:
    """Reviewers land on their inbox, everyone else on the executions."""
    if roles.can_decide(request.user) and not roles.is_admin(request.user):
        return redirect("approvals:inbox")
    return redirect("traces:executions")


class GraphStartForm(forms.Form):
    """Start one execution of a graph: its input as JSON, and optional limits."""

    input = forms.CharField(
        label="Input (JSON)",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}),
        error_messages={"required": "Give the input as a JSON object, e.g. {}."},
    )
    token_budget = forms.IntegerField(label="Token budget", required=False, min_value=0)
    recursion_limit = forms.IntegerField(
        label="Step limit", required=False, min_value=1, max_value=services.MAX_RECURSION_LIMIT
    )

    def __init__(self, *args: Any, entry: registry.GraphEntry, **kwargs: Any) -> None:
        # One form per card on the same page: ids must differ, names stay plain.
        kwargs.setdefault("auto_id", f"id_{entry.name}_%s")
        kwargs.setdefault("initial", {"input": json.dumps(entry.example_input, indent=2, ensure_ascii=False)})
        super().__init__(*args, **kwargs)
        self.entry = entry
        step_default = entry.recursion_limit or settings.LOOPGATE_DEFAULT_RECURSION_LIMIT
        self.fields["token_budget"].widget.attrs["placeholder"] = f"{settings.LOOPGATE_DEFAULT_TOKEN_BUDGET:,}"
        self.fields["token_budget"].help_text = "Leave empty for the default."
        self.fields["recursion_limit"].widget.attrs["placeholder"] = str(step_default)
        self.fields["recursion_limit"].help_text = "Most super-steps the graph may take. Leave empty for the default."

    def clean_input(self) -> dict[str, Any]:
        text = self.cleaned_data["input"]
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(value, dict):
            raise ValidationError("The input must be a JSON object ({...}).")
        return value

    def add_service_errors(self, exc: ValidationError) -> None:
        """Put a service's ValidationError on the fields it names; input keys go under the input."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for key, errors in exc.message_dict.items():
            if key in self.fields:
                self.add_error(key, errors)
            else:
                self.add_error("input", [f"{key}: {message}" for message in errors])


@dataclass
class GraphCard:
    entry: registry.GraphEntry
    form: GraphStartForm | None = None  # None for users who may not start executions, and broken graphs
    start_error: str = ""


def _graph_cards(
    request: AuthedRequest, *, bound: GraphStartForm | None = None, start_error: str = "", name: str = ""
) -> list[GraphCard]:
    can_operate = roles.can_operate(request.user)
    cards = []
    for entry in registry.all_entries():
        card = GraphCard(entry=entry)
        if can_operate and not entry.is_broken:
            card.form = bound if bound is not None and entry.name == name else GraphStartForm(entry=entry)
        if entry.name == name:
            card.start_error = start_error
        cards.append(card)
    return cards


def _render_graphs(
    request: AuthedRequest, *, name: str, bound: GraphStartForm | None = None, start_error: str = "", status: int
) -> HttpResponse:
    """The page again after a failed start: the whole page, or for htmx just that graph's card."""
    cards = _graph_cards(request, bound=bound, start_error=start_error, name=name)
    card = next((card for card in cards if card.entry.name == name), None)
    ctx = {"cards": cards, "card": card, "config_error": registry.config_error()}
    return htmx.render_fragment(
        request, "orchestrator/graphs.html", "orchestrator/partials/graph_card.html", ctx, status=status
    )


@require_GET
def graph_list(request: AuthedRequest) -> HttpResponse:
    ctx = {"cards": _graph_cards(request), "config_error": registry.config_error()}
    return render(request, "orchestrator/graphs.html", ctx)


@require_POST
def graph_start(request: AuthedRequest, name: str) -> HttpResponse:
    # Checked before anything else: the buttons are hidden from other roles,
    # but a forged POST must not learn more than "no".
    if not roles.can_operate(request.user):
        raise DjangoPermissionDenied("Only operators and admins may start executions.")
    try:
        entry = registry.get_graph(name)
    except GraphNotFound as exc:
        raise Http404(exc.message) from None
    except GraphBroken as exc:
        return _render_graphs(request, name=name, start_error=exc.message, status=409)

    form = GraphStartForm(request.POST, entry=entry)
    if not form.is_valid():
        return _render_graphs(request, name=name, bound=form, status=422)
    try:
        execution = services.execution_start(
            graph_name=entry.name,
            input=form.cleaned_data["input"],
            user=request.user,
            token_budget=form.cleaned_data["token_budget"],
            recursion_limit=form.cleaned_data["recursion_limit"],
        )
    except ValidationError as exc:
        form.add_service_errors(exc)
        return _render_graphs(request, name=name, bound=form, status=422)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    except GraphNotFound as exc:  # the registry reloaded between the two look-ups
        raise Http404(exc.message) from None
    except GraphBroken as exc:
        return _render_graphs(request, name=name, start_error=exc.message, status=409)

    messages.success(request, f"Started {entry.name} ({execution.short_id}).")
    url = reverse("traces:execution", args=[execution.id])
    if htmx.is_htmx(request):
        return htmx.redirect(HttpResponse(status=204), url)
    return redirect(url)


@require_GET
@roles.admin_required
def budgets(request: AuthedRequest) -> HttpResponse:
    from django.conf import settings

    return render(request, "orchestrator/budgets.html", {"default_budget": settings.LOOPGATE_DEFAULT_TOKEN_BUDGET})
