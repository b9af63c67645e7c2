"""The approvals pages: the inbox, one approval, the audit log.

Plain forms that work without JavaScript; htmx requests get the fragment
(``render_fragment``). Permission checks are here and in the selectors, never
only in templates: operators and users without a role get 403 on any POST.
"""

from __future__ import annotations

import csv
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from approvals import selectors, services
from approvals.forms import AuditFilterForm, BulkDecisionForm, DecisionForm, InboxFilterForm
from approvals.models import Approval
from orchestrator import htmx, roles
from orchestrator.errors import AlreadyDecided, InvalidState, PermissionDenied
from orchestrator.params import param_text
from orchestrator.types import AuthedRequest

AUDIT_PAGE_SIZE = 200


# --- the inbox ---------------------------------------------------------------------------------


def _inbox_context(request: AuthedRequest, query: QueryDict | None = None) -> dict[str, Any]:
    user = request.user
    query = request.GET if query is None else query
    filters = InboxFilterForm(query or None, graphs=selectors.approval_graph_names(user=user))
    chosen = filters.filters()
    approvals = list(selectors.approval_list_pending(user=user, **chosen))
    live = "&".join(f"{k}={'1' if v is True else v}" for k, v in chosen.items())
    return {
        "approvals": approvals,
        "filters": filters,
        "filtered": bool(chosen),
        "live_query": ("rows=1&" + live).rstrip("&"),
        "history": selectors.approval_history(user=user),
        "can_decide": roles.can_decide(user),
        "visible": selectors.approvals_visible_to(user=user),
        "filter_query": query.urlencode(),
    }


@require_GET
def inbox(request: AuthedRequest) -> HttpResponse:
    return render(request, "approvals/inbox.html", _inbox_context(request))


@require_POST
def bulk_decide(request: AuthedRequest) -> HttpResponse:
    if not roles.can_decide(request.user):
        raise DjangoPermissionDenied("Only reviewers and admins may decide approvals.")
    pending = [str(i) for i in selectors.approval_pending_ids(user=request.user)]
    # Ids that are no longer pending are still accepted, so the reviewer is told who decided them.
    known = pending + [str(i) for i in request.POST.getlist("ids") if _is_uuid(i)]
    form = BulkDecisionForm(request.POST, pending_ids=known)
    if not form.is_valid():
        for error in form.errors.get("ids", []) + form.errors.get("decision", []):
            messages.error(request, error)
    else:
        outcome = services.approvals_decide_bulk(
            approval_ids=[UUID(i) for i in form.cleaned_data["ids"]], user=request.user,
            decision=form.cleaned_data["decision"], comment=form.cleaned_data["comment"],
        )
        verb = "Approved" if form.cleaned_data["decision"] == "approve" else "Rejected"
        if outcome.decided:
            names = ", ".join(a.title for a in outcome.decided[:5])
            messages.success(request, f"{verb} {len(outcome.decided)}: {names}{'…' if len(outcome.decided) > 5 else ''}.")
        for approval in outcome.already:
            who = selectors.user_for_display(approval.decided_by, request.user)
            messages.warning(request, f"{approval.title} was already {approval.get_status_display()} by {who}.")
        for approval, reason in outcome.refused:
            messages.error(request, f"{approval.title}: {reason}")
    target = reverse("approvals:inbox")
    if request.POST.get("filters"):
        target += "?" + request.POST["filters"]
    if htmx.is_htmx(request):
        ctx = _inbox_context(request, QueryDict(request.POST.get("filters", "")))
        # The body, and "Recently decided" out of band: what was just decided shows there at once.
        body = render_to_string("approvals/partials/inbox_body.html", {**ctx, "fragment": True}, request=request)
        history = render_to_string("approvals/partials/inbox_history.html", {**ctx, "oob": True}, request=request)
        return HttpResponse(body + history)
    return redirect(target)


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


# --- one approval ---------------------------------------------------------------------------------


def _detail_context(request: AuthedRequest, approval: Approval, form: DecisionForm | None = None,
                    **extra: Any) -> dict[str, Any]:
    right = selectors.approval_decide_right(user=request.user, approval=approval)
    if approval.is_pending and right.allowed and form is None:
        form = DecisionForm(approval=approval)
    ctx = {
        "approval": approval,
        "form": form if approval.is_pending and right.allowed else None,
        "right": right,
        "decided_by": selectors.user_for_display(approval.decided_by, request.user) if approval.decided_by else "",
        "claimed_by": selectors.user_for_display(approval.claimed_by, request.user) if approval.claimed_by else "",
        "next_approval": None if approval.is_pending else selectors.approval_next_pending(user=request.user,
                                                                                          after=approval),
        "open_edit": param_text(request.GET, "edit") == "1",
        **selectors.approval_context(approval=approval),
    }
    ctx.update(extra)
    return ctx


@require_GET
def detail(request: AuthedRequest, approval_id: UUID) -> HttpResponse:
    approval = selectors.approval_get_for_user(user=request.user, approval_id=approval_id)
    return render(request, "approvals/detail.html", _detail_context(request, approval))


@require_POST
def decide(request: AuthedRequest, approval_id: UUID) -> HttpResponse:
    approval = selectors.approval_get_for_user(user=request.user, approval_id=approval_id, write=True)
    form = DecisionForm(request.POST, approval=approval)
    status, raced, refusal = 200, False, ""
    sent_too_late = not approval.is_pending  # decided before this POST (another tab, another reviewer)
    if approval.is_pending and form.is_valid():
        try:
            approval = services.approval_decide(
                approval_id=approval.id, user=request.user,
                decisions=form.cleaned_data["decisions"], comment=form.cleaned_data["comment"],
            )
        except AlreadyDecided as exc:
            approval, sent_too_late = exc.approval, True  # show who won the race, not an error
            raced = approval.decided_by_id != request.user.id
        except ValidationError as exc:
            form.add_service_errors(exc)
            status = 422
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from None
        except InvalidState as exc:
            refusal, status = exc.message, 409
    elif approval.is_pending:
        status = 422
    else:
        raced = approval.decided_by_id != request.user.id
    # You decided it already, in another tab: say that what you just sent was not applied.
    already_yours = sent_too_late and not raced
    if status == 200 and not htmx.is_htmx(request):
        # Post/redirect/get: reloading the page never posts the decision again.
        if raced:
            messages.info(request, "Someone else decided this approval first.")
        elif already_yours:
            messages.info(request, "You had already decided this approval (in another tab or window); what you "
                                   "just sent was not applied.")
        return redirect("approvals:detail", approval_id=approval.id)
    approval.refresh_from_db()
    ctx = _detail_context(request, approval, form=form if status == 422 else None, raced=raced, refusal=refusal,
                          oob=htmx.is_htmx(request))
    ctx["already_yours"] = already_yours
    return htmx.render_fragment(request, "approvals/detail.html", "approvals/partials/decision.html", ctx,
                                status=status)


@require_POST
def claim(request: AuthedRequest, approval_id: UUID) -> HttpResponse:
    return _claim_or_release(request, approval_id, release=False)


@require_POST
def release(request: AuthedRequest, approval_id: UUID) -> HttpResponse:
    return _claim_or_release(request, approval_id, release=True)


def _claim_or_release(request: AuthedRequest, approval_id: UUID, *, release: bool) -> HttpResponse:
    approval = selectors.approval_get_for_user(user=request.user, approval_id=approval_id, write=True)
    status = 200
    try:
        if release:
            approval = services.approval_release(approval_id=approval.id, user=request.user)
        else:
            approval = services.approval_claim(approval_id=approval.id, user=request.user)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    except (InvalidState, AlreadyDecided) as exc:
        messages.warning(request, exc.message)
        status = 409
    approval = selectors.approval_get_for_user(user=request.user, approval_id=approval.id)
    if htmx.is_htmx(request):
        ctx = {"approval": approval, "can_decide": True, "user": request.user}
        template = "approvals/partials/claim.html" if request.POST.get("where") == "detail" else \
            "approvals/partials/approval_row.html"
        return render(request, template, ctx, status=status)
    if "filters" in request.POST:  # from the inbox: back to it, filters kept
        query = request.POST["filters"]
        return redirect(reverse("approvals:inbox") + (f"?{query}" if query else ""))
    return redirect("approvals:detail", approval_id=approval.id)


@require_GET
def execution_status(request: AuthedRequest, approval_id: UUID) -> HttpResponse:
    """The execution's status after a decision, polled by the page until it settles."""
    approval = selectors.approval_get_for_user(user=request.user, approval_id=approval_id)
    ctx = {"approval": approval, "execution": approval.execution,
           "pending_siblings": selectors.approval_context(approval=approval)["pending_siblings"],
           "next_round": selectors.approval_list_pending(user=request.user).filter(
               execution=approval.execution).exclude(id=approval.id).first(),
           "oob": True}
    return render(request, "approvals/partials/execution_status.html", ctx)


# --- the audit log ----------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value: str) -> str:
    """Spreadsheets run cells that start like a formula; the log holds text from graphs."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@require_GET
def audit(request: AuthedRequest) -> HttpResponse:
    user = request.user
    form = AuditFilterForm(request.GET or None, users=selectors.audit_actor_names(user=user),
                           graphs=selectors.audit_graph_names(user=user))
    filters = form.filters()
    if param_text(request.GET, "export") == "csv":
        writer = csv.writer(_Echo())
        columns = ["when", "who", "kind", "outcome", "action", "graph", "execution", "approval", "comment", "detail"]

        def rows():  # type: ignore[no-untyped-def]
            yield writer.writerow(columns)
            for entry in selectors.audit_rows(user=user, **filters):
                row = entry.as_row()
                yield writer.writerow([_csv_cell(str(row[c])) for c in columns])

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="loopgate-audit-{stamp}.csv"'
        return response
    ctx = {"form": form, "entries": list(selectors.audit_rows(user=user, limit=AUDIT_PAGE_SIZE, **filters)),
           "total": selectors.audit_count(user=user, **filters), "page_size": AUDIT_PAGE_SIZE,
           "query": request.GET.urlencode(), "visible": selectors.approvals_visible_to(user=user)}
    return render(request, "approvals/audit.html", ctx)
