"""Approvals in Slack end to end: the FinOps example run by a real Celery worker, Slack's Web API
played by a stand-in on loopback that records every call, and Slack's interactivity callbacks
sent as real signed requests to the endpoint (the test client, in this process).

The worker posts new approvals and runs every call to Slack; this process is the web side:
the endpoint, the inbox's service, and the tasks they queue (to the same broker and queue).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import services as approvals
from approvals.models import Approval
from orchestrator import services as executions
from orchestrator.models import AuditEntry, Execution
from slack_approvals import services
from slack_approvals.models import SlackMessage
from tests.factories import make_role_users, make_user
from tests.services import Proc, start_worker, wait_for
from tests.slack_approvals import interactions
from tests.slack_approvals.slack_standin import TOKEN, Call, SlackStandIn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TIMEOUT = 60
CHANNELS = {"finops": "CFINOPS"}
DEFAULT_CHANNEL, ESCALATION_CHANNEL = "CDEFAULT", "CESCALATE"
RITA, MARIA, STRANGER = "U0RITA", "U0MARIA", "U0STRANGER"


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn()
    yield standin
    standin.close()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, slack: SlackStandIn) -> Iterator[Proc]:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        proc = start_worker(
            "slack", concurrency=4, LOOPGATE_SLACK_BOT_TOKEN=TOKEN, LOOPGATE_SLACK_SIGNING_SECRET=interactions.SECRET,
            LOOPGATE_SLACK_API_URL=slack.url, LOOPGATE_SLACK_CHANNEL=DEFAULT_CHANNEL,
            LOOPGATE_SLACK_CHANNELS=json.dumps(CHANNELS), LOOPGATE_SLACK_ESCALATION_CHANNEL=ESCALATION_CHANNEL)
    yield proc
    proc.kill()


@pytest.fixture
def users(worker, slack, settings, request):  # type: ignore[no-untyped-def]
    """The role users, rita (the reviewer) linked to Slack; this process configured like the worker."""
    settings.LOOPGATE_SLACK_BOT_TOKEN = TOKEN
    settings.LOOPGATE_SLACK_SIGNING_SECRET = interactions.SECRET
    settings.LOOPGATE_SLACK_API_URL = slack.url
    settings.LOOPGATE_SLACK_CHANNEL = DEFAULT_CHANNEL
    settings.LOOPGATE_SLACK_CHANNELS = CHANNELS
    settings.LOOPGATE_SLACK_ESCALATION_CHANNEL = ESCALATION_CHANNEL
    users = make_role_users()
    services.identity_link(team_id=interactions.TEAM, slack_user_id=RITA, user=users["reviewer"], linked_by=None)
    yield users
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"--- worker ---\n{worker.output()}")


# --- helpers ----------------------------------------------------------------------------------


def start_finops(**input_: Any) -> Execution:
    return executions.execution_start(graph_name="finops", input={"account": "acme-prod", **input_}, user=None)


def pending(execution: Execution) -> Approval:
    def check() -> Approval | None:
        status = Execution.objects.get(id=execution.id).status
        assert status not in Execution.FINISHED, Execution.objects.get(id=execution.id).error
        return Approval.objects.filter(execution=execution, status=Approval.Status.PENDING).first()

    return wait_for(check, timeout=TIMEOUT, what="the FinOps approval")  # type: ignore[return-value]


def finished(execution: Execution) -> Execution:
    wait_for(lambda: Execution.objects.filter(id=execution.id, status__in=Execution.FINISHED).exists(),
             timeout=TIMEOUT, what="the execution to finish")
    execution.refresh_from_db()
    return execution


def buttons_of(call: Call) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in call.args.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]}


def about(approval: Approval, call: Call) -> bool:
    return any(b.get("block_id") == f"approval:{approval.id}" for b in call.args.get("blocks") or []) or \
        str(approval.execution.short_id) in json.dumps(call.args.get("blocks"))


def posted(slack: SlackStandIn, approval: Approval, channel: str | None = None) -> Call:
    def find() -> Call | None:
        calls = [c for c in slack.of("chat.postMessage") if about(approval, c)
                 and (channel is None or c.args["channel"] == channel)]
        return calls[0] if calls else None

    return wait_for(find, timeout=TIMEOUT, what=f"the post of approval {approval.id}")  # type: ignore[return-value]


def updated(slack: SlackStandIn, post: Call, words: str) -> Call:
    """The chat.update of the posted message that says ``words``."""
    ts = wait_for(lambda: _ts_of(post), timeout=TIMEOUT, what="the posted message's ts")

    def find() -> Call | None:
        calls = [c for c in slack.of("chat.update", channel=post.args["channel"], ts=ts)
                 if words in json.dumps(c.args.get("blocks"), ensure_ascii=False)]
        return calls[-1] if calls else None

    return wait_for(find, timeout=TIMEOUT, what=f"a chat.update saying {words!r}")  # type: ignore[return-value]


def _ts_of(post: Call) -> str | None:
    [approval_id] = {b["block_id"].split(":", 1)[1] for b in post.args["blocks"] if b["type"] == "actions"}
    return SlackMessage.objects.filter(approval_id=approval_id, kind="request").values_list("ts", flat=True).first()


def ephemeral(slack: SlackStandIn, user: str, words: str) -> Call:
    def find() -> Call | None:
        calls = [c for c in slack.of("chat.postEphemeral", user=user) if words in c.args.get("text", "")]
        return calls[-1] if calls else None

    return wait_for(find, timeout=TIMEOUT, what=f"an ephemeral answer to {user} saying {words!r}")  # type: ignore[return-value]


# --- the tests --------------------------------------------------------------------------------


class SlackApprovalJourneyTests:
    def test_a_finops_approval_is_posted_to_the_graphs_channel_with_its_action_arguments_and_buttons(
            self, users, slack) -> None:  # type: ignore[no-untyped-def]
        execution = start_finops()
        approval = pending(execution)
        post = posted(slack, approval)
        assert post.token == TOKEN and post.args["channel"] == "CFINOPS"
        text = json.dumps(post.args["blocks"], ensure_ascii=False)
        assert "shutdown_cluster" in post.args["text"] and "dev-analytics-2" in text
        assert "grace_period_minutes\\n30" in text and "snapshot_first\\ntrue" in text
        [context] = [b for b in post.args["blocks"] if b["type"] == "context"]
        assert "*finops*" in context["elements"][0]["text"] and execution.short_id in context["elements"][0]["text"]
        assert f"/approvals/{approval.id}/" in context["elements"][0]["text"]
        buttons = buttons_of(post)
        assert set(buttons) == {"approve", "edit", "reject", "open"}
        assert buttons["approve"]["value"] == buttons["reject"]["value"] == str(approval.id)

    def test_a_signed_approve_click_from_a_linked_user_resumes_the_execution_and_updates_the_message(
            self, users, slack) -> None:  # type: ignore[no-untyped-def]
        execution = start_finops()
        approval = pending(execution)
        post = posted(slack, approval)
        response = interactions.post(Client(), interactions.block_actions("approve", approval.id, user=RITA))
        assert response.status_code == 200
        approval.refresh_from_db()
        assert approval.status == Approval.Status.APPROVED and approval.decided_by == users["reviewer"]
        entry = AuditEntry.objects.get(approval_id=approval.id, kind=AuditEntry.Kind.DECISION)
        assert entry.actor == users["reviewer"] and entry.detail["via"] == "slack"
        execution = finished(execution)
        assert execution.status == Execution.Status.SUCCEEDED and execution.state["outcome"] == "shut_down"
        update = updated(slack, post, "*Approved* by rita")
        assert "approve" not in buttons_of(update)  # the buttons are gone

    def test_a_click_from_an_unlinked_slack_user_is_refused_with_an_ephemeral_message(self, users, slack) -> None:  # type: ignore[no-untyped-def]
        execution = start_finops()
        approval = pending(execution)
        posted(slack, approval)
        response = interactions.post(Client(), interactions.block_actions("approve", approval.id, user=STRANGER))
        assert response.status_code == 200
        answer = ephemeral(slack, STRANGER, "not linked to a Loopgate user")
        assert answer.args["channel"] == "CFINOPS" and "/slack/link/" in answer.args["text"]
        approval.refresh_from_db()
        assert approval.status == Approval.Status.PENDING
        assert not AuditEntry.objects.filter(approval_id=approval.id).exists()
        assert Execution.objects.get(id=execution.id).status == Execution.Status.INTERRUPTED

    def test_a_click_after_a_decision_in_the_inbox_says_who_decided(self, users, slack) -> None:  # type: ignore[no-untyped-def]
        execution = start_finops()
        approval = pending(execution)
        post = posted(slack, approval)
        inbox = Client()
        inbox.force_login(users["admin"])
        decided = inbox.post(f"/approvals/{approval.id}/decide/", {"d-0-type": "reject", "comment": "still needed"})
        assert decided.status_code in (200, 302), decided.content[:500]
        assert Approval.objects.get(id=approval.id).status == Approval.Status.REJECTED
        updated(slack, post, "*Rejected* by alice")  # decided in the inbox: the message follows
        response = interactions.post(Client(), interactions.block_actions("approve", approval.id, user=RITA))
        assert response.status_code == 200
        ephemeral(slack, RITA, "Already rejected by alice")
        approval.refresh_from_db()
        assert approval.status == Approval.Status.REJECTED and approval.decided_by == users["admin"]
        assert AuditEntry.objects.filter(approval_id=approval.id, kind=AuditEntry.Kind.DECISION).count() == 1
        assert finished(execution).state["outcome"] == "declined"

    def test_expiry_updates_the_message_and_posts_the_escalation(self, users, slack) -> None:  # type: ignore[no-untyped-def]
        execution = start_finops(approval_timeout_seconds=1)
        approval = pending(execution)
        post = posted(slack, approval)
        wait_for(lambda: timezone.now() > approval.deadline, timeout=10, what="the deadline")
        assert approvals.approvals_expire_overdue() >= 1
        updated(slack, post, "*Expired unanswered*")
        escalation = posted(slack, approval, channel=ESCALATION_CHANNEL)
        assert "Escalation" in json.dumps(escalation.args["blocks"]) and "shutdown_cluster" in escalation.args["text"]
        assert finished(execution).state["outcome"] == "escalated"

    def test_edit_opens_a_modal_from_the_schema_and_a_valid_submission_approves_the_edited_shutdown(
            self, users, slack) -> None:  # type: ignore[no-untyped-def]
        execution = start_finops()
        approval = pending(execution)
        post = posted(slack, approval)
        click = interactions.block_actions("edit", approval.id, user=RITA, trigger_id="trigger-edit-1")
        assert interactions.post(Client(), click).status_code == 200
        opened = wait_for(lambda: slack.of("views.open", trigger_id="trigger-edit-1"), timeout=TIMEOUT,
                          what="views.open")
        view = opened[0].args["view"]  # type: ignore[index]
        inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
        assert inputs["arg:grace_period_minutes"]["type"] == "number_input"
        assert inputs["arg:grace_period_minutes"]["initial_value"] == "30"
        assert inputs["arg:grace_period_minutes"]["max_value"] == "1440"
        assert inputs["arg:snapshot_first"]["type"] == "checkboxes" and inputs["arg:snapshot_first"]["initial_options"]
        assert "arg:cluster" not in inputs  # fixed by the schema: shown, not editable
        assert any(b.get("block_id") == "arg:cluster" and "dev-analytics-2" in b["text"]["text"]
                   for b in view["blocks"])

        too_long = {"arg:grace_period_minutes": interactions.number("5000"),
                    "arg:snapshot_first": interactions.checkbox(False), "comment": interactions.text(None)}
        response = interactions.post(Client(), interactions.view_submission(approval.id, too_long, user=RITA))
        assert response.status_code == 200
        assert response.json()["response_action"] == "errors"
        assert "1440" in response.json()["errors"]["arg:grace_period_minutes"]
        assert Approval.objects.get(id=approval.id).status == Approval.Status.PENDING

        good = {"arg:grace_period_minutes": interactions.number("90"),
                "arg:snapshot_first": interactions.checkbox(False), "comment": interactions.text("after the demo")}
        response = interactions.post(Client(), interactions.view_submission(approval.id, good, user=RITA))
        assert response.status_code == 200 and response.content == b""
        execution = finished(execution)
        [action] = execution.state["actions_taken"]
        assert (action["grace_period_minutes"], action["snapshot_first"]) == (90, False)
        updated(slack, post, "*Approved with edits* by rita")

    def test_a_decision_through_the_api_updates_the_message(self, users, slack) -> None:  # type: ignore[no-untyped-def]
        execution = start_finops()
        approval = pending(execution)
        post = posted(slack, approval)
        api = APIClient()
        api.force_authenticate(users["admin"])
        response = api.post(f"/api/v1/approvals/{approval.id}/decide/", {"decisions": [{"type": "approve"}]},
                            format="json")
        assert response.status_code == 200, response.content
        updated(slack, post, "*Approved* by alice")
        assert finished(execution).state["outcome"] == "shut_down"

    def test_cancelling_the_execution_updates_the_message(self, users, slack) -> None:  # type: ignore[no-untyped-def]
        execution = start_finops()
        approval = pending(execution)
        post = posted(slack, approval)
        executions.execution_cancel(execution_id=execution.id, user=users["admin"], reason="not today")
        updated(slack, post, "No longer needed")
        assert Approval.objects.get(id=approval.id).status == Approval.Status.CANCELLED

    def test_an_interrupt_naming_a_linked_user_goes_to_them_as_a_direct_message(self, users, slack) -> None:  # type: ignore[no-untyped-def]
        maria = make_user("maria.lopez", "reviewers")  # the idle cluster's owner in the FinOps data
        services.identity_link(team_id=interactions.TEAM, slack_user_id=MARIA, user=maria, linked_by=None)
        execution = start_finops()
        approval = pending(execution)
        wait_for(lambda: slack.of("conversations.open", users=MARIA), timeout=TIMEOUT, what="conversations.open")
        post = posted(slack, approval)
        assert post.args["channel"] == "D0MARIA"
        # She answers in her DM: Reject declines the shutdown.
        click = interactions.block_actions("reject", approval.id, user=MARIA, channel="D0MARIA")
        assert interactions.post(Client(), click).status_code == 200
        assert Approval.objects.get(id=approval.id).decided_by == maria
        updated(slack, post, "*Rejected* by maria.lopez")
        assert finished(execution).state["outcome"] == "declined"

    def test_a_rate_limited_post_is_retried_by_the_worker(self, users, slack) -> None:  # type: ignore[no-untyped-def]
        slack.fail("chat.postMessage", 429, "ratelimited")
        approval = pending(start_finops())
        wait_for(lambda: SlackMessage.objects.filter(approval=approval).exists(), timeout=TIMEOUT,
                 what="the post, retried")
        attempts = [c for c in slack.of("chat.postMessage") if about(approval, c)]
        assert len(attempts) == 2  # the 429, then the retry that went through (posted once)

    def test_a_permanent_refusal_is_logged_and_not_retried(self, users, slack, worker) -> None:  # type: ignore[no-untyped-def]
        slack.fail("chat.postMessage", 200, "channel_not_found")
        approval = pending(start_finops())
        wait_for(lambda: f"posting approval {approval.id} to Slack not done (permanent)" in worker.output(),
                 timeout=TIMEOUT, what="the worker to give up")
        assert len([c for c in slack.of("chat.postMessage") if about(approval, c)]) == 1
        assert not SlackMessage.objects.filter(approval=approval).exists()
        assert Approval.objects.get(id=approval.id).status == Approval.Status.PENDING  # the inbox still has it
