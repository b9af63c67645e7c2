"""Telling people about approvals: email (Django's backend) and an outgoing webhook.

- New approvals: an email to every reviewer and admin with an address, and one
  webhook call per approval (event ``approval.created``).
- Expired ones: an email to the members of ``LOOPGATE_ESCALATION_GROUP`` (and
  the reviewers) and a webhook call (event ``approval.escalated``); the approval
  is marked escalated (``escalated_at``) once that email is sent.

Every email and every webhook call is a Celery task of its own (approvals/tasks.py),
queued after commit: a mail server that is down never holds up the runner or the
expiry loop. Transient failures retry with exponential backoff; permanent ones
(a 5xx refusal, a 4xx webhook answer) are logged.

Links lead to the approval page (``LOOPGATE_SITE_URL`` + its path); a visitor
who is not logged in is sent to the login page and back.

The webhook POSTs JSON to ``LOOPGATE_WEBHOOK_URL``::

    {"event": "approval.created", "approval": {"id", "url", "graph", "action",
     "summary", "description", "status", "deadline", "created_at", "execution_id"}}

signed the Standard Webhooks way (standardwebhooks.com): ``webhook-id`` (the same
for every attempt at one message, so a receiver can drop repeats),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature:
v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` under
``LOOPGATE_WEBHOOK_SECRET`` (its UTF-8 bytes, or the decoded key of a
``whsec_<base64>`` secret, as the Standard Webhooks libraries read it). A
receiver recomputes it over the raw body, refuses timestamps more than five
minutes off and ids it has seen: the README's recipe does. ``X-Loopgate-Event``
names the event. ``X-Loopgate-Signature: sha256=<hex>`` (the body alone, so a
captured delivery replays forever) is still sent for one release, deprecated.
Delivery is a Celery task retried with exponential backoff on network errors,
5xx and 429; other 4xx answers are permanent and logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import smtplib
import time
import urllib.error
import urllib.request
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from approvals.models import Approval
from orchestrator import roles

logger = logging.getLogger(__name__)

# Deprecated: the body alone is signed, so a captured delivery can be replayed. Sent until the
# next release beside the Standard Webhooks headers below, then removed.
SIGNATURE_HEADER = "X-Loopgate-Signature"
ID_HEADER, TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"
EVENT_HEADER = "X-Loopgate-Event"
WEBHOOK_TIMEOUT_SECONDS = 10


class DeliveryError(Exception):
    """A notification that did not go out; ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class WebhookError(DeliveryError):
    pass


class EmailError(DeliveryError):
    pass


def approval_url(approval: Approval) -> str:
    return f"{settings.LOOPGATE_SITE_URL}{reverse('approvals:detail', args=[approval.id])}"


def _emails(q: Q) -> list[str]:
    users = User.objects.filter(q, is_active=True).exclude(email="").distinct()
    return sorted({u.email for u in users})


def reviewer_emails() -> list[str]:
    return _emails(Q(groups__name__in=[roles.REVIEWERS, roles.ADMINS]))


def escalation_emails() -> list[str]:
    return _emails(Q(groups__name=settings.LOOPGATE_ESCALATION_GROUP))


def _approvals(ids: list[Any]) -> list[Approval]:
    return list(Approval.objects.filter(id__in=ids).select_related("execution").order_by("created_at"))


def notify_created(approval_ids: list[Any]) -> int:
    """Queue a webhook per new, still pending approval and the reviewers' email (a task of its
    own, retried on SMTP failures). Returns how many approvals were announced."""
    approvals = [a for a in _approvals(approval_ids) if a.is_pending]
    if not approvals:
        return 0
    for approval in approvals:
        queue_webhook("approval.created", approval)
    from approvals.tasks import email_created

    email_created.delay([str(a.id) for a in approvals])
    return len(approvals)


def notify_escalated(approval_ids: list[Any]) -> int:
    """Queue a webhook per expired approval and the escalation email (a task of its own,
    retried on SMTP failures). Returns how many approvals were announced."""
    approvals = [a for a in _approvals(approval_ids) if a.status == Approval.Status.EXPIRED]
    if not approvals:
        return 0
    for approval in approvals:
        queue_webhook("approval.escalated", approval)
    from approvals.tasks import email_escalated

    email_escalated.delay([str(a.id) for a in approvals])
    return len(approvals)


def email_created(approval_ids: list[Any]) -> int:
    """Email every reviewer and admin about the approvals still pending. Returns the emails
    sent; raises ``EmailError`` when the mail server fails."""
    approvals = [a for a in _approvals(approval_ids) if a.is_pending]
    recipients = reviewer_emails()
    if not approvals or not recipients:
        return 0
    first = approvals[0]
    subject = (
        f"Approval waiting: {first.title} ({first.execution.graph_name})"
        if len(approvals) == 1
        else f"{len(approvals)} approvals waiting: {first.title}, …"
    )
    body = render_to_string("approvals/email/created.txt", {"approvals": _with_urls(approvals)})
    return _send(subject, body, recipients)


def email_escalated(approval_ids: list[Any]) -> int:
    """Email the escalation group (and the reviewers) about expired approvals not escalated
    yet, then mark them escalated: ``escalated_at`` means someone was told. Returns the
    emails sent; raises ``EmailError`` when the mail server fails (nothing is marked then)."""
    approvals = [a for a in _approvals(approval_ids)
                 if a.status == Approval.Status.EXPIRED and a.escalated_at is None]
    if not approvals:
        return 0
    escalation = escalation_emails()
    if not escalation:
        logger.warning("no one in group %r to escalate approvals %s to", settings.LOOPGATE_ESCALATION_GROUP,
                       approval_ids)
    # The escalation group follows up; reviewers hear of it too (they may still be on it).
    recipients = sorted(set(escalation) | set(reviewer_emails()))
    if not recipients:
        return 0
    first = approvals[0]
    subject = f"Expired unanswered: {first.title} ({first.execution.graph_name})"
    if len(approvals) > 1:
        subject = f"{len(approvals)} approvals expired unanswered"
    body = render_to_string("approvals/email/escalated.txt", {"approvals": _with_urls(approvals)})
    sent = _send(subject, body, recipients)
    if sent:
        Approval.objects.filter(id__in=[a.id for a in approvals], escalated_at__isnull=True).update(
            escalated_at=timezone.now(), updated_at=timezone.now()
        )
    return sent


def _send(subject: str, body: str, recipients: list[str]) -> int:
    """``send_mail``, its failures as ``EmailError``: a refusal (5xx) is permanent, the rest
    (connection refused or dropped, 4xx, timeouts) may pass, so the task retries them."""
    try:
        return send_mail(_one_line(subject), body, None, recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        raise EmailError(f"every recipient refused: {exc.recipients}", permanent=True) from exc
    except smtplib.SMTPResponseException as exc:
        raise EmailError(f"the mail server answered {exc.smtp_code}: {exc.smtp_error!r}",
                         permanent=500 <= exc.smtp_code < 600) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise EmailError(f"the mail server is unreachable: {exc}", permanent=False) from exc


def _with_urls(approvals: list[Approval]) -> list[Approval]:
    for approval in approvals:
        approval.url = approval_url(approval)  # type: ignore[attr-defined]
    return approvals


def _one_line(text: str) -> str:
    """Subjects come partly from graph payloads: no header injection by newline."""
    return " ".join(text.split())[:200]


# --- the webhook -----------------------------------------------------------------------------


def webhook_body(event: str, approval: Approval) -> str:
    action = approval.actions[0] if approval.actions else {}
    data = {
        "event": event,
        "approval": {
            "id": str(approval.id),
            "url": approval_url(approval),
            "graph": approval.execution.graph_name,
            "action": approval.title,
            "summary": approval.summary,
            "description": str(action.get("description", "")),
            "status": approval.status,
            "deadline": approval.deadline.isoformat() if approval.deadline else None,
            "created_at": approval.created_at.isoformat(),
            "execution_id": str(approval.execution_id),
        },
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def sign(body: bytes, secret: str) -> str:
    """The deprecated ``X-Loopgate-Signature`` value: the body alone, replayable."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signing_key(secret: str) -> bytes:
    """A ``whsec_<base64>`` secret is a base64 key (Standard Webhooks' form); any other, its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def webhook_id(event: str, body: str) -> str:
    """One message, one id, whatever attempt carries it: a hash of what is sent. The same
    approval announced twice (a redelivered task) is then one message to the receiver too."""
    return "msg_" + hashlib.sha256(f"{event}\n{body}".encode()).hexdigest()[:32]


def standard_signature(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``: the id and the time are signed
    with the body, so a captured delivery cannot be replayed later or under another id."""
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def queue_webhook(event: str, approval: Approval) -> None:
    if not settings.LOOPGATE_WEBHOOK_URL:
        return
    from approvals.tasks import deliver_webhook

    deliver_webhook.delay(event, webhook_body(event, approval))


def webhook_post(event: str, body: str) -> int:
    """POST one signed webhook; raises ``WebhookError`` (``permanent`` or not) on failure."""
    url = settings.LOOPGATE_WEBHOOK_URL
    if not url:
        return 0
    data = body.encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "Loopgate")
    request.add_header(EVENT_HEADER, event)
    secret = settings.LOOPGATE_WEBHOOK_SECRET
    msg_id, timestamp = webhook_id(event, body), int(time.time())  # a fresh timestamp per attempt
    request.add_header(ID_HEADER, msg_id)
    request.add_header(TIMESTAMP_HEADER, str(timestamp))
    if secret:
        request.add_header(STANDARD_SIGNATURE_HEADER, standard_signature(msg_id, timestamp, data, secret))
        request.add_header(SIGNATURE_HEADER, sign(data, secret))  # deprecated, for one release
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310 - admin-set URL
            return int(response.status)
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        raise WebhookError(f"{url} answered {exc.code}", permanent=permanent) from None
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookError(f"{url} unreachable: {exc}", permanent=False) from None


def parse_ids(ids: list[str]) -> list[UUID]:
    return [UUID(str(i)) for i in ids]
