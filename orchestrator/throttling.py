"""Login throttling, by django-axes: per account and per address, for the login page and API tokens.

After ``LOOPGATE_LOGIN_FAILURE_LIMIT`` failed logins an account (the username
tried) is locked, and so is the address they came from, each on its own, for
``LOOPGATE_LOGIN_LOCKOUT_SECONDS``; another failure while locked starts the wait
again. A request with a bad API token counts as a failed login of its address
(a token names no account). A locked address is refused before its token is
even looked at, so tokens cannot be guessed either.

Each lockout is a line in the audit log (kind ``lockout``, shown to admins);
admins see the current lockouts on the Lockouts page and may lift one.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.core.exceptions import ValidationError
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request

from orchestrator.audit import audit_record
from orchestrator.models import AuditEntry

TOKEN_SENDER = "loopgate.api_token"


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from: the ASGI server's ``REMOTE_ADDR``.

    Behind a proxy, run daphne with ``--proxy-headers`` so that this is the
    client's address (from ``X-Forwarded-For``), not the proxy's; otherwise
    every client shares the proxy's address and one attacker locks them all.
    """
    return request.META.get("REMOTE_ADDR") or None


def lockout_parameters(request_or_attempt: Any, credentials: dict[str, Any] | None = None) -> list[str]:
    """What a failure counts against (``AXES_LOCKOUT_PARAMETERS``): the account and the address, each on
    its own; only the address for a bad API token, which names no account."""
    if credentials is not None:
        username = credentials.get("username")
    else:
        username = getattr(request_or_attempt, "username", None)
    return ["username", "ip_address"] if username else ["ip_address"]


def lockout_seconds() -> int:
    return int(settings.LOOPGATE_LOGIN_LOCKOUT_SECONDS)


def lockout_message() -> str:
    minutes = max(1, round(lockout_seconds() / 60))
    return (f"Too many failed logins from this account or address: try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}, or ask an admin to lift the lockout.")


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """What a locked-out login or API request gets (``AXES_LOCKOUT_CALLABLE``): a 429 saying why and how long."""
    message = lockout_message()
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"message": message, "code": "locked_out", "extra": {"retry_after_seconds": lockout_seconds()}},
            status=429)
    else:
        from django.contrib.auth.forms import AuthenticationForm

        form = AuthenticationForm(request, data=None)
        response = TemplateResponse(request, "registration/login.html",
                                    {"form": form, "locked_out": message, "next": request.POST.get("next", "")},
                                    status=429)
        response.render()
    response["Retry-After"] = str(lockout_seconds())
    return response


# --- API tokens ----------------------------------------------------------------------------------------


class ThrottledTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with each bad token counted against its address as a failed login."""

    def authenticate(self, request: Request) -> Any:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        from axes.handlers.proxy import AxesProxyHandler

        django_request = request._request
        credentials = {"username": None}
        if not AxesProxyHandler.is_allowed(django_request, credentials):
            raise exceptions.Throttled(wait=lockout_seconds(), detail=lockout_message())
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            user_login_failed.send(sender=TOKEN_SENDER, credentials=credentials, request=django_request)
            raise


# --- the audit line and the admins' view ---------------------------------------------------------------


def audit_lockout(sender: Any, request: HttpRequest | None = None, username: str | None = None,
                  ip_address: str | None = None, **kwargs: Any) -> None:
    """Receiver of axes' ``user_locked_out``: one audit line per lockout (axes also signals each refused try)."""
    user = get_user_model().objects.filter(username=username).first() if username else None
    via = "api token" if request is not None and request.path.startswith("/api/") else "login page"
    since = timezone.now() - datetime.timedelta(seconds=lockout_seconds())
    key = {"detail__username": username} if username else {"detail__ip_address": ip_address or ""}
    if AuditEntry.objects.filter(kind=AuditEntry.Kind.LOCKOUT, outcome="locked out", created_at__gte=since,
                                 **key).exists():
        return
    with transaction.atomic():
        audit_record(kind=AuditEntry.Kind.LOCKOUT, actor=user, outcome="locked out",
                     action=f"{via}: {username or '(no account)'} from {ip_address or 'unknown'}"[:200],
                     detail={"username": username or "", "ip_address": ip_address or "", "via": via,
                             "failure_limit": settings.AXES_FAILURE_LIMIT,
                             "lockout_seconds": lockout_seconds()})


@dataclass(frozen=True)
class Lockout:
    """One locked account or address: what, how many failures, when the last one was."""

    kind: str  # "account" or "address"
    value: str
    failures: int
    last_failure: datetime.datetime

    @property
    def until(self) -> datetime.datetime:
        return self.last_failure + datetime.timedelta(seconds=lockout_seconds())


def lockouts_current() -> list[Lockout]:
    """The accounts and addresses locked now (failures within the lockout time at the limit), newest first."""
    from axes.models import AccessAttempt

    since = timezone.now() - datetime.timedelta(seconds=lockout_seconds())
    recent = AccessAttempt.objects.filter(attempt_time__gte=since)
    found = []
    for kind, field in (("account", "username"), ("address", "ip_address")):
        # Failures of no account (bad API tokens) count against their address only.
        named = recent.filter(username__gt="") if field == "username" else recent.filter(ip_address__isnull=False)
        rows = (named.values(field)
                .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
                .filter(failures__gte=settings.AXES_FAILURE_LIMIT))
        found += [Lockout(kind, row[field], row["failures"], row["last"]) for row in rows]
    return sorted(found, key=lambda lockout: lockout.last_failure, reverse=True)


def lockout_lift(*, kind: str, value: str, user: Any) -> int:
    """Lift the lockout of an account or an address (an admin's): its failures are forgotten, also where
    they counted against the other (an account's failures against their address). Audited."""
    from axes.models import AccessAttempt

    from orchestrator import roles
    from orchestrator.errors import PermissionDenied

    if not roles.is_admin(user):
        raise PermissionDenied("Only admins may lift lockouts.")
    field = {"account": "username", "address": "ip_address"}.get(kind)
    if field is None or not value:
        raise ValidationError({"kind": "Give an account or an address."})
    with transaction.atomic():
        count, _ = AccessAttempt.objects.filter(**{field: value}).delete()
        audit_record(kind=AuditEntry.Kind.LOCKOUT, actor=user, outcome="lifted",
                     action=f"lifted: {kind} {value}"[:200], detail={kind: value, "attempts_forgotten": count})
    return count
