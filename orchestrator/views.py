from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orchestrator import budgets as budgets_mod
from orchestrator import htmx, params, registry, roles, selectors, services
from orchestrator.errors import GraphBroken, GraphNotFound, InvalidState, LoopgateError, PermissionDenied
from orchestrator.forms import (
    ApiTokenForm,
    DefaultBudgetForm,
    GraphBudgetForm,
    GraphStartForm,
    RaiseBudgetForm,
    add_service_errors,
)
from orchestrator.types import AuthedRequest
from orchestrator.models import BudgetDefault


@require_GET
def home(request: AuthedRequest) -> HttpResponse:
    """Reviewers land on their inbox, everyone else on the executions."""
    if roles.can_decide(request.user) and not roles.is_admin(request.user):
        return redirect("approvals:inbox")
    return redirect("traces:executions")


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
    for entry in selectors.graph_entries_for_user(user=request.user):
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
    if not htmx.is_htmx(request):
        # The whole page comes back: say at the top what happened; the card's error is scrolled into view.
        messages.error(request, f"{name} was not started: {start_error or 'see the errors in its form below.'}")
    ctx = {"cards": cards, "card": card, "config_error": registry.config_error()}
    return htmx.render_fragment(
        request, "orchestrator/graphs.html", "orchestrator/partials/graph_card.html", ctx, status=status
    )


@require_GET
def graph_list(request: AuthedRequest) -> HttpResponse:
    ctx = {"cards": _graph_cards(request), "config_error": registry.config_error(),
           "has_roles": bool(roles.user_roles(request.user))}
    return render(request, "orchestrator/graphs.html", ctx)


@require_http_methods(["GET", "POST"])
def graph_start(request: AuthedRequest, name: str) -> HttpResponse:
    if request.method == "GET":  # a reload after a failed start: the graph's card, never a bare 405
        return redirect(reverse("graphs") + f"#graph-{name}")
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
            require_input_keys=True,
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
    except LoopgateError as exc:  # e.g. the graph's daily token limit is used up
        return _render_graphs(request, name=name, start_error=exc.message, status=exc.status)

    messages.success(request, f"Started {entry.name} ({execution.short_id}).")
    url = reverse("traces:execution", args=[execution.id])
    if htmx.is_htmx(request):
        return htmx.redirect(HttpResponse(status=204), url)
    return redirect(url)


# --- budgets (admins) ---------------------------------------------------------------------------


def _graph_budget_form(row: budgets_mod.GraphBudgetRow, default_budget: int, data: Any = None) -> GraphBudgetForm:
    initial = {"token_budget": row.budget.token_budget if row.budget else None,
               "daily_token_limit": row.daily_token_limit}
    return GraphBudgetForm(data, graph_name=row.name, default_budget=default_budget, initial=initial)


def _budgets_ctx(*, default_form: DefaultBudgetForm | None = None, bound: GraphBudgetForm | None = None,
                 bound_name: str = "") -> dict[str, Any]:
    from orchestrator import accounting, llm

    default_budget = budgets_mod.default_token_budget()
    rows = budgets_mod.budget_overview()
    for row in rows:
        row.form = bound if bound is not None and row.name == bound_name else _graph_budget_form(row, default_budget)
    return {
        "default_form": default_form or DefaultBudgetForm(initial={"token_budget": default_budget}),
        "default_budget": default_budget,
        "default_stored": BudgetDefault.objects.exists(),
        "default_setting": settings.LOOPGATE_DEFAULT_TOKEN_BUDGET,
        "rows": rows,
        "changes": budgets_mod.budget_change_list(),
        "usage_days": accounting.graph_usage_by_day(days=7),
        "currency": settings.LOOPGATE_CURRENCY,
        "model_name": llm.configured_model_name(),
    }


@require_GET
@roles.admin_required
def budgets(request: AuthedRequest) -> HttpResponse:
    return render(request, "orchestrator/budgets.html", _budgets_ctx())


@require_POST
@roles.admin_required
def budget_default_set(request: AuthedRequest) -> HttpResponse:
    form = DefaultBudgetForm(request.POST)
    if form.is_valid():
        try:
            row = budgets_mod.budget_set_default(user=request.user, token_budget=form.cleaned_data["token_budget"])
        except ValidationError as exc:
            form.add_error("token_budget", exc.messages)
        else:
            if not htmx.is_htmx(request):
                messages.success(request, f"The default budget is now {row.token_budget:,} tokens per execution.")
                return redirect("budgets")
            # Every graph without its own budget changes with the default: the whole region again.
            ctx = _budgets_ctx()
            ctx["default_saved"] = f"Saved: {row.token_budget:,} tokens per execution, for new executions."
            return render(request, "orchestrator/partials/budgets_main.html", ctx)
    return htmx.render_fragment(request, "orchestrator/budgets.html", "orchestrator/partials/budgets_main.html",
                                _budgets_ctx(default_form=form), status=422)


@require_POST
@roles.admin_required
def graph_budget_set(request: AuthedRequest, name: str) -> HttpResponse:
    if name not in {entry.name for entry in registry.all_entries()}:
        raise Http404(f"There is no graph named {name!r}.")
    form = GraphBudgetForm(request.POST, graph_name=name, default_budget=budgets_mod.default_token_budget())
    if form.is_valid():
        try:
            budgets_mod.graph_budget_set(user=request.user, graph_name=name, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if not htmx.is_htmx(request):
                messages.success(request, f"Saved the budget of {name}.")
                return redirect("budgets")
            ctx = _budgets_ctx()
            ctx.update(row=next(r for r in ctx["rows"] if r.name == name), saved=True, oob_changes=True)
            return render(request, "orchestrator/partials/graph_budget_row.html", ctx)
    ctx = _budgets_ctx(bound=form, bound_name=name)
    ctx["row"] = next(r for r in ctx["rows"] if r.name == name)
    return htmx.render_fragment(request, "orchestrator/budgets.html", "orchestrator/partials/graph_budget_row.html",
                                ctx, status=422)


@require_POST
def execution_budget_raise(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    """Raise an over-budget execution's budget and resume it (admins; the form is on the execution page)."""
    if not roles.is_admin(request.user):
        raise DjangoPermissionDenied("Only admins may raise an execution's budget.")
    execution = selectors.execution_get_for_user(user=request.user, execution_id=execution_id)
    url = reverse("traces:execution", args=[execution.id])
    form = RaiseBudgetForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            execution = budgets_mod.execution_budget_raise(
                execution_id=execution.id, user=request.user, token_budget=form.cleaned_data["token_budget"]
            )
        except ValidationError as exc:
            form.add_error("token_budget", exc.messages)
        except InvalidState as exc:
            error = exc.message
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from None
        else:
            messages.success(request, f"Budget raised to {execution.token_budget:,} tokens; the execution resumes "
                                      "from where it stopped.")
            return htmx.redirect(HttpResponse(status=204), url) if htmx.is_htmx(request) else redirect(url)
    error = error or "; ".join(m for ms in form.errors.values() for m in ms)
    if htmx.is_htmx(request):
        execution.refresh_from_db()
        ctx = {"execution": execution, "raise_form": form, "raise_error": error}
        return render(request, "orchestrator/partials/raise_budget.html", ctx, status=422 if form.errors else 409)
    # Without JavaScript: back to the execution page, which shows the message.
    messages.error(request, f"The budget was not raised: {error}")
    return redirect(url)


# --- API tokens (admins) -----------------------------------------------------------------------------


def _render_api_tokens(request: AuthedRequest, *, form: ApiTokenForm, new_token: Any = None,
                       status: int = 200) -> HttpResponse:
    from orchestrator import tokens

    from orchestrator import throttling

    ctx = {"rows": tokens.api_token_list(actor=request.user), "form": form, "new_token": new_token,
           "api_docs_url": reverse("api:docs"), "lockouts": throttling.lockouts_current(),
           "failure_limit": settings.LOOPGATE_LOGIN_FAILURE_LIMIT,
           "lockout_minutes": max(1, round(throttling.lockout_seconds() / 60))}
    return render(request, "orchestrator/tokens.html", ctx, status=status)


@require_GET
@roles.admin_required
def api_tokens(request: AuthedRequest) -> HttpResponse:
    return _render_api_tokens(request, form=ApiTokenForm())


@require_POST
@roles.admin_required
def api_token_create(request: AuthedRequest) -> HttpResponse:
    """Make a token and show its key on this response only: it is never shown in full again."""
    from orchestrator import tokens

    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _render_api_tokens(request, form=form, status=422)
    try:
        token = tokens.api_token_create(username=form.cleaned_data["username"], actor=request.user)
    except ValidationError as exc:
        form.add_error("username", exc.messages)
        return _render_api_tokens(request, form=form, status=422)
    return _render_api_tokens(request, form=ApiTokenForm(), new_token=token)


@require_POST
@roles.admin_required
def lockout_lift(request: AuthedRequest) -> HttpResponse:
    """Lift a login lockout of an account or an address (shown on the API tokens page)."""
    from orchestrator import throttling

    kind, value = request.POST.get("kind", ""), request.POST.get("value", "")[:255]
    try:
        throttling.lockout_lift(kind=kind, value=value, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Lockout of {kind} {value} lifted.")
    return redirect(f"{reverse('api_tokens')}#lockouts")


@require_POST
@roles.admin_required
def api_token_revoke(request: AuthedRequest, user_id: int) -> HttpResponse:
    from orchestrator import tokens

    if tokens.api_token_revoke(user_id=user_id, actor=request.user):
        messages.success(request, "Token revoked: it no longer works.")
    return redirect("api_tokens")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 400 answer (``handler400``): what was wrong, when a parameter parser said so."""
    message = exception.message if isinstance(exception, params.BadParameter) else "The request was malformed."
    if request.path.startswith("/api/") or not getattr(request, "user", None) or not request.user.is_authenticated:
        return params.bad_request_response(request, message)  # the API's shape; plain text before login
    return render(request, "400.html", {"reason": message}, status=400)
