"""The executions list, one execution's trace, its states, forks and lineage."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orchestrator import htmx, registry, roles, services
from orchestrator.params import param_flag, param_int, param_text, param_uuid
from orchestrator import selectors as core
from orchestrator.errors import GraphBroken, GraphNotFound, InvalidState, LoopgateError, PermissionDenied
from orchestrator.models import Execution
from orchestrator.types import AuthedRequest
from traces import fragments, selectors, tokens
from traces import services as trace_services
from traces import state as states
from traces.forms import ExecutionFilterForm, ForkForm
from traces.models import Step

PER_PAGE = 25


# --- the executions list ------------------------------------------------------------------------


@require_GET
def executions(request: AuthedRequest) -> HttpResponse:
    form = ExecutionFilterForm(request.GET or None, graphs=selectors.execution_graph_names(user=request.user))
    filters = form.filters() if form.is_bound else selectors.ExecutionFilters()
    qs = selectors.execution_list_filtered(user=request.user, filters=filters)
    page = Paginator(qs, PER_PAGE).get_page(param_int(request.GET, "page", minimum=1))
    query = request.GET.copy()
    query.pop("page", None)
    ctx = {"form": form, "page": page, "filters": filters, "query": query.urlencode(),
           "has_roles": bool(roles.user_roles(request.user))}
    return htmx.render_fragment(request, "traces/executions.html", "traces/partials/executions_results.html", ctx)


# --- one execution ------------------------------------------------------------------------------------


def _execution(request: AuthedRequest, execution_id: UUID) -> Execution:
    return core.execution_get_for_user(user=request.user, execution_id=execution_id)


def _after(request: AuthedRequest) -> int | None:
    return param_int(request.GET, "after")


@require_GET
def execution_detail(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    execution = _execution(request, execution_id)
    node = param_text(request.GET, "node", max_length=200)
    after = _after(request)
    ctx: dict[str, Any] = {"tab": "timeline", "node": node, "after": after,
                           "page": selectors.step_page(execution=execution, after=after, node=node),
                           "fork_start": selectors.fork_start(execution=execution)}
    ctx.update(fragments.header_context(execution=execution, user=request.user))
    ctx.update(fragments.diagram_context(execution=execution))
    ctx.update(fragments.now_context(execution=execution))
    return render(request, "traces/execution.html", ctx)


@require_GET
async def execution_tokens(request: HttpRequest, execution_id: UUID) -> HttpResponse:
    """The LLM message being generated, as Server-Sent Events (``traces.tokens``)."""
    user = await request.auser()
    await sync_to_async(core.execution_get_for_user, thread_sensitive=False)(user=user, execution_id=execution_id)
    events = tokens.token_events(execution_id, request.headers.get("Last-Event-ID") or None)
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


@require_GET
def execution_steps(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    """More timeline rows (``after`` a row id): the next page, or the rows a reconnecting socket missed."""
    execution = _execution(request, execution_id)
    node = param_text(request.GET, "node", max_length=200)
    page = selectors.step_page(execution=execution, after=_after(request), node=node)
    ctx: dict[str, Any] = {"execution": execution, "page": page, "node": node}
    if not htmx.is_htmx(request):
        return redirect(f"{reverse('traces:execution', args=[execution.id])}?{request.GET.urlencode()}")
    if param_flag(request.GET, "regions"):
        # Only the live regions (the timeline has more pages than are loaded; rows come with "Show more").
        return HttpResponse(fragments.render_execution_push(execution=execution, user=request.user))
    if param_flag(request.GET, "catchup"):
        # A socket that just (re)opened may have missed the status change too: send the live regions again.
        # (the same regions as a status push: a run that ended before the socket opened shows its result).
        ctx["regions"] = fragments.render_execution_push(execution=execution, user=request.user)
    return render(request, "traces/partials/timeline_page.html", ctx)


@require_GET
def step_detail(request: AuthedRequest, execution_id: UUID, step_id: int) -> HttpResponse:
    """One step opened: its update, its diff and its spans (a fragment for htmx, a page otherwise)."""
    execution = _execution(request, execution_id)
    step = selectors.step_get(execution=execution, step_id=step_id)
    if param_text(request.GET, "format", max_length=10) == "json":
        export = selectors.execution_export_step(step=step)
        return JsonResponse(export, json_dumps_params={"indent": 2, "ensure_ascii": False})
    ctx: dict[str, Any] = {"execution": execution, "step": step, "spans": selectors.step_spans(step=step), "tab": "timeline"}
    if htmx.is_htmx(request):
        return render(request, "traces/partials/step_detail.html", ctx)
    ctx.update(fragments.header_context(execution=execution, user=request.user))
    return render(request, "traces/step.html", ctx)


@require_GET
def execution_export(request: AuthedRequest, execution_id: UUID) -> JsonResponse:
    execution = _execution(request, execution_id)
    response = JsonResponse(selectors.execution_export(execution=execution),
                            json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="loopgate-{execution.graph_name}-{execution.short_id}.json"'
    return response


@require_POST
def execution_cancel(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    if not roles.can_operate(request.user):
        raise DjangoPermissionDenied("Only operators and admins may cancel executions.")
    execution = _execution(request, execution_id)
    status = 200
    try:
        execution = services.execution_cancel(execution_id=execution.id, user=request.user)
        note = "Cancel requested: it stops at the next step." if execution.status == Execution.Status.RUNNING \
            else "Cancelled."
        messages.success(request, note)
    except InvalidState as exc:
        messages.error(request, exc.message)
        # htmx swaps only 2xx answers: the header, showing how it ended, is the answer there.
        status = 200 if htmx.is_htmx(request) else 409
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    if htmx.is_htmx(request):
        execution.refresh_from_db()
        ctx = fragments.header_context(execution=execution, user=request.user)
        return render(request, "traces/partials/header.html", ctx, status=status)
    return redirect("traces:execution", execution_id=execution.id)


# --- time travel ------------------------------------------------------------------------------------------


def _state_page(request: AuthedRequest, execution: Execution, *, checkpoint_id: str | None, ns: str,
                form: ForkForm | None = None, status: int = 200) -> HttpResponse:
    try:
        at = states.state_at(execution=execution, checkpoint_id=checkpoint_id, checkpoint_ns=ns)
    except ValidationError as exc:
        raise Http404(" ".join(exc.messages)) from None
    except (GraphNotFound, GraphBroken) as exc:
        ctx = {"tab": "state", "graph_error": exc.message}
        ctx.update(fragments.header_context(execution=execution, user=request.user))
        return render(request, "traces/state.html", ctx, status=409)
    can_operate = roles.can_operate(request.user)
    if form is None and can_operate:
        import json

        form = ForkForm(nodes=at.nodes, **_fork_form_context(request, execution, at), initial={
            "checkpoint": at.checkpoint_id, "ns": at.checkpoint_ns,
            "state": json.dumps(at.values, indent=2, ensure_ascii=False),
        })
    steps = list(Step.objects.filter(execution=execution).order_by("id").values_list("step", "nodes", "checkpoint_id")[:2000])
    gates = _fork_form_context(request, execution, at)["gates"] if can_operate else {}
    ctx: dict[str, Any] = {"tab": "state", "at": at, "form": form, "steps": steps, "gates": gates}
    ctx.update(fragments.header_context(execution=execution, user=request.user))
    return render(request, "traces/state.html", ctx, status=status)


def _fork_form_context(request: AuthedRequest, execution: Execution, at: states.StateAt) -> dict[str, Any]:
    """The fork form's gate marks, and whether this user may make a fork their decision."""
    try:
        entry = registry.get_graph(execution.graph_name)
        gates = entry.gates(states.pregel_for_namespace(entry.compiled, at.checkpoint_ns))
    except (GraphNotFound, GraphBroken, ValidationError):
        gates = {}
    return {"gates": gates, "can_decide": roles.can_decide(request.user)}


@require_GET
def execution_state(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    execution = _execution(request, execution_id)
    checkpoint_id = param_text(request.GET, "checkpoint", max_length=64) or None
    return _state_page(request, execution, checkpoint_id=checkpoint_id, ns=param_text(request.GET, "ns", max_length=255))


@require_http_methods(["GET", "POST"])
def execution_fork(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    """Fork (with an edited state) or, with ``replay`` in the form, replay from a checkpoint."""
    if request.method == "GET":  # a reload after a failed fork: the state page, never a bare 405
        return redirect(reverse("traces:state", args=[execution_id]))
    if not roles.can_operate(request.user):
        raise DjangoPermissionDenied("Only operators and admins may fork or replay executions.")
    execution = _execution(request, execution_id)
    checkpoint_id = request.POST.get("checkpoint", "")[:64]
    ns = request.POST.get("ns", "")[:255]
    try:
        at = states.state_at(execution=execution, checkpoint_id=checkpoint_id or None, checkpoint_ns=ns)
    except ValidationError as exc:
        raise Http404(" ".join(exc.messages)) from None
    form = None
    try:
        if "replay" in request.POST:
            fork = trace_services.execution_replay(execution_id=execution.id, user=request.user,
                                                   checkpoint_id=at.checkpoint_id, checkpoint_ns=ns)
        else:
            form = ForkForm(request.POST, nodes=at.nodes, **_fork_form_context(request, execution, at))
            if not form.is_valid():
                return _state_page(request, execution, checkpoint_id=at.checkpoint_id, ns=ns, form=form, status=422)
            fork = trace_services.execution_fork(
                execution_id=execution.id, user=request.user, checkpoint_id=at.checkpoint_id, checkpoint_ns=ns,
                values=form.cleaned_data["state"], as_node=form.cleaned_data["as_node"],
                decide=bool(form.cleaned_data.get("decide")),
            )
    except ValidationError as exc:
        if form is None:
            messages.error(request, " ".join(exc.messages))
            return redirect(f"{reverse('traces:state', args=[execution.id])}?checkpoint={at.checkpoint_id}")
        form.add_service_errors(exc)
        return _state_page(request, execution, checkpoint_id=at.checkpoint_id, ns=ns, form=form, status=422)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    except (GraphNotFound, GraphBroken) as exc:
        messages.error(request, exc.message)
        return redirect("traces:state", execution_id=execution.id)
    except LoopgateError as exc:  # e.g. the graph's daily token limit is used up
        if form is None:
            messages.error(request, exc.message)
            return redirect(f"{reverse('traces:state', args=[execution.id])}?checkpoint={at.checkpoint_id}")
        form.add_error(None, exc.message)
        return _state_page(request, execution, checkpoint_id=at.checkpoint_id, ns=ns, form=form, status=exc.status)
    step = at.step if at.step is not None else "?"
    verb = "Replaying" if "replay" in request.POST else "Forked"
    text = f"{verb} from step {step} of {execution.short_id} as {fork.short_id}."
    hold = selectors.fork_hold(execution=fork)
    if hold is not None:
        text += f" It waits for a reviewer before it goes past “{hold.node}”, which asks a person."
    messages.success(request, text)
    url = reverse("traces:execution", args=[fork.id])
    if htmx.is_htmx(request):
        return htmx.redirect(HttpResponse(status=204), url)
    return redirect(url)


@require_GET
def execution_lineage(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    execution = _execution(request, execution_id)
    tree = selectors.execution_lineage(execution=execution)
    members = selectors.lineage_members(tree)
    ctx: dict[str, Any] = {"tab": "lineage", "tree": tree, "members": members}
    ctx.update(fragments.header_context(execution=execution, user=request.user))
    return render(request, "traces/lineage.html", ctx)


@require_GET
def execution_compare(request: AuthedRequest, execution_id: UUID) -> HttpResponse:
    """Two executions of one lineage side by side, step by step; ``with`` defaults to the parent."""
    execution = _execution(request, execution_id)
    other_id = param_uuid(request.GET, "with") or execution.parent_id
    row = param_int(request.GET, "row")
    other = _execution(request, other_id) if other_id else None
    ctx: dict[str, Any] = {"tab": "lineage", "other": other}
    ctx.update(fragments.header_context(execution=execution, user=request.user))
    if other is None:
        # No parent to default to: offer the other executions of the graph, newest first.
        ctx["candidates"] = list(core.execution_list_for_user(user=request.user)
                                 .filter(graph_name=execution.graph_name).exclude(id=execution.id)
                                 .select_related("created_by").order_by("-created_at")[:25])
        return render(request, "traces/compare.html", ctx)
    if other.graph_name != execution.graph_name:
        ctx["problem"] = "Only executions of the same graph can be compared."
        return render(request, "traces/compare.html", ctx, status=422)
    # Left is the older line (the parent), right the newer (the fork).
    left, right = (other, execution) if other.created_at <= execution.created_at else (execution, other)
    try:
        comparison = states.executions_compare(left=left, right=right)
    except (GraphNotFound, GraphBroken) as exc:
        ctx["problem"] = exc.message
        return render(request, "traces/compare.html", ctx, status=409)
    rows = comparison.rows
    selected = rows[row] if row is not None and row < len(rows) else next((r for r in rows if not r.same), None)
    ctx.update({"left": left, "right": right, "comparison": comparison, "selected": selected})
    return render(request, "traces/compare.html", ctx)
