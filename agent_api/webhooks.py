"""A run's ``webhook``: POSTed each time the run stops (it ended, or waits for people), with the
run, its thread's values and the times, as LangGraph's server posts it; signed like every Loopgate
webhook, the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` with
``LOOPGATE_WEBHOOK_SECRET``; approvals/notifications.py)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from agent_api import selectors, shapes
from agent_api.models import Run
from orchestrator.jsonable import to_jsonable
from orchestrator.models import Execution

STOPPED = (*Execution.FINISHED, Execution.Status.INTERRUPTED)
EVENT = "run.stopped"
TIMEOUT_SECONDS = 10


def check_url(url: Any) -> str:
    """The webhook URL, if it is http(s) to a host ``LOOPGATE_RUN_WEBHOOK_HOSTS`` allows; else ValidationError."""
    if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
        raise ValidationError({"webhook": "An http(s) URL."})
    allowed = settings.LOOPGATE_RUN_WEBHOOK_HOSTS
    if urlparse(url).hostname not in allowed:
        raise ValidationError({"webhook": f"{urlparse(url).hostname} is not in LOOPGATE_RUN_WEBHOOK_HOSTS "
                                          f"({', '.join(allowed) or 'empty: run webhooks are off'})."})
    return url


def body_for(run: Run) -> str:
    execution = run.execution
    output = selectors.run_output(run)
    payload: dict[str, Any] = {
        **shapes.run(run, execution),
        "run_started_at": shapes.iso(execution.started_at),
        "run_ended_at": shapes.iso(execution.finished_at or execution.updated_at),
        "webhook_sent_at": timezone.now().isoformat(),
        "values": None if isinstance(output, dict) and "__error__" in output else output,
    }
    if isinstance(output, dict) and "__error__" in output:
        payload["error"] = output["__error__"]
    return json.dumps(to_jsonable(payload), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def queue_for(execution_id: Any, status: str) -> None:
    if status not in STOPPED:
        return
    run = Run.objects.select_related("execution", "thread").filter(execution_id=execution_id).exclude(webhook="").first()
    if run is None:
        return
    from agent_api.tasks import deliver_run_webhook

    deliver_run_webhook.delay(run.webhook, body_for(run))


def post(url: str, body: str) -> int:
    """POST one signed body; raises ``WebhookError`` (``permanent`` or not) on failure."""
    from approvals import notifications as signing
    from approvals.notifications import WebhookError

    check_url(url)  # the allowed hosts may have changed since the run was started
    data = body.encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "Loopgate")
    request.add_header(signing.EVENT_HEADER, EVENT)
    secret = settings.LOOPGATE_WEBHOOK_SECRET
    msg_id, timestamp = signing.webhook_id(EVENT, body), int(time.time())  # a fresh timestamp per attempt
    request.add_header(signing.ID_HEADER, msg_id)
    request.add_header(signing.TIMESTAMP_HEADER, str(timestamp))
    if secret:
        request.add_header(signing.STANDARD_SIGNATURE_HEADER,
                           signing.standard_signature(msg_id, timestamp, data, secret))
        request.add_header(signing.SIGNATURE_HEADER, signing.sign(data, secret))  # deprecated, as approvals' own
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - allowed hosts only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        raise WebhookError(f"{url} answered {exc.code}", permanent=permanent) from None
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookError(f"{url} unreachable: {exc}", permanent=False) from None
