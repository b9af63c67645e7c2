"""The interactivity endpoint Slack calls, and the page where a user links their Slack account."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from slack_sdk.signature import SignatureVerifier

from orchestrator.errors import PermissionDenied
from orchestrator.types import AuthedRequest
from slack_approvals import client, interactivity, selectors, services

logger = logging.getLogger(__name__)


def _verified(request: HttpRequest) -> bool:
    """Slack's signature (``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}`` under the signing secret)
    over the raw body, a timestamp within five minutes, and a signature not seen before."""
    headers = {"x-slack-request-timestamp": request.headers.get("X-Slack-Request-Timestamp", ""),
               "x-slack-signature": request.headers.get("X-Slack-Signature", "")}
    if not headers["x-slack-request-timestamp"].isdigit() or not headers["x-slack-signature"]:
        return False
    verifier = SignatureVerifier(settings.LOOPGATE_SLACK_SIGNING_SECRET)
    if not verifier.is_valid_request(request.body, headers):
        return False
    return services.request_first_seen(signature=headers["x-slack-signature"])


@csrf_exempt
@login_not_required
@require_POST
def interactivity_endpoint(request: HttpRequest) -> HttpResponse:
    """Slack's Request URL for interactivity: button clicks and modal submissions.

    Unsigned, badly signed, stale or replayed requests get 401 and change nothing."""
    if not client.enabled():
        raise Http404("Slack is not configured.")
    if not _verified(request):
        logger.warning("refused a Slack interactivity request that failed verification")
        return HttpResponse("Signature or timestamp refused.", status=401, content_type="text/plain")
    try:
        payload = json.loads(request.POST.get("payload") or "")
    except ValueError:
        return HttpResponse("No payload.", status=400, content_type="text/plain")
    if not isinstance(payload, dict):
        return HttpResponse("No payload.", status=400, content_type="text/plain")
    kind = payload.get("type")
    if kind == "block_actions":
        answer = interactivity.handle_block_actions(payload)
    elif kind == "view_submission":
        answer = interactivity.handle_view_submission(payload)
    else:
        answer = interactivity.Answer()  # view_closed and the like: nothing to do
    if answer.body is None:
        return HttpResponse(status=answer.status)
    return JsonResponse(answer.body, status=answer.status)


@require_http_methods(["GET", "POST"])
def link(request: AuthedRequest, token: str) -> HttpResponse:
    """Link the Slack user of a signed link (sent to them alone, in Slack) to the logged-in user."""
    try:
        team_id, slack_user_id = interactivity.read_link_token(token)
    except signing.BadSignature:
        ctx = {"expired": True, "identities": selectors.identities_of(request.user)}
        return render(request, "slack_approvals/link.html", ctx, status=400)
    ctx = {"team_id": team_id, "slack_user_id": slack_user_id, "identities": selectors.identities_of(request.user)}
    ctx["linked"] = any(i.team_id == team_id and i.slack_user_id == slack_user_id for i in ctx["identities"])
    if request.method == "POST" and not ctx["linked"]:
        try:
            services.identity_link(team_id=team_id, slack_user_id=slack_user_id, user=request.user,
                                   linked_by=request.user)
        except (PermissionDenied, ValidationError) as exc:
            ctx["error"] = exc.message if isinstance(exc, PermissionDenied) else " ".join(exc.messages)
            return render(request, "slack_approvals/link.html", ctx, status=409)
        messages.success(request, "Slack linked: your clicks in Slack now decide as you.")
        return redirect("approvals:inbox")
    return render(request, "slack_approvals/link.html", ctx)
