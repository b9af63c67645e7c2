"""The interactivity endpoint's gate (Slack's signature and timestamp), linking a Slack account,
and the feature switched off. Refused requests must change nothing: no decision, no audit line,
no task queued (the test run's own queue on Redis stays as it was)."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase, override_settings

from approvals import events
from approvals.models import Approval
from orchestrator.models import AuditEntry
from slack_approvals import interactivity, listeners, services
from slack_approvals.models import SlackIdentity, SlackRequestSeen
from tests.approvals.factories import make_approval
from tests.base import PageTestCase
from tests.factories import make_role_users
from tests.slack_approvals import interactions

SLACK = {"LOOPGATE_SLACK_BOT_TOKEN": "xoxb-test", "LOOPGATE_SLACK_SIGNING_SECRET": interactions.SECRET,
         "LOOPGATE_SLACK_API_URL": "http://127.0.0.1:9/api/", "LOOPGATE_SLACK_CHANNEL": "CDEFAULT"}
RITA = "U0RITA"


def queued() -> int:
    """Messages waiting in this run's Celery queue: a refused request queues nothing."""
    return int(redis.Redis.from_url(settings.REDIS_URL).llen(settings.CELERY_TASK_DEFAULT_QUEUE))


@override_settings(**SLACK)
class SignatureGateTests(TestCase):
    def setUp(self) -> None:
        self.users = make_role_users()
        services.identity_link(team_id=interactions.TEAM, slack_user_id=RITA, user=self.users["reviewer"],
                               linked_by=None)
        self.approval = make_approval()
        self.click = interactions.block_actions("approve", self.approval.id, user=RITA)
        self.before = queued()

    def assert_nothing_changed(self) -> None:
        self.approval.refresh_from_db()
        self.assertEqual(self.approval.status, Approval.Status.PENDING)
        self.assertFalse(AuditEntry.objects.filter(approval_id=self.approval.id).exists())
        self.assertEqual(queued(), self.before)

    def test_an_unsigned_callback_is_refused_and_changes_nothing(self) -> None:
        response = interactions.post(self.client, self.click, signed=False)
        self.assertEqual(response.status_code, 401)
        self.assert_nothing_changed()

    def test_a_callback_without_a_timestamp_is_refused(self) -> None:
        body = interactions.body_of(self.click)
        response = self.client.post(interactions.URL, data=body, content_type="application/x-www-form-urlencoded",
                                    headers={"X-Slack-Signature": interactions.signature(body, int(time.time()))})
        self.assertEqual(response.status_code, 401)
        self.assert_nothing_changed()

    def test_a_callback_signed_with_another_secret_is_refused(self) -> None:
        response = interactions.post(self.client, self.click, secret="not-the-signing-secret")
        self.assertEqual(response.status_code, 401)
        self.assert_nothing_changed()

    def test_a_stale_timestamp_is_refused_even_with_a_valid_signature(self) -> None:
        response = interactions.post(self.client, self.click, timestamp=int(time.time()) - 6 * 60)
        self.assertEqual(response.status_code, 401)
        self.assert_nothing_changed()

    def test_a_body_changed_after_signing_is_refused(self) -> None:
        stamp = int(time.time())
        signed = interactions.body_of(interactions.block_actions("reject", self.approval.id, user=RITA))
        response = self.client.post(
            interactions.URL, data=interactions.body_of(self.click), content_type="application/x-www-form-urlencoded",
            headers={"X-Slack-Request-Timestamp": str(stamp),
                     "X-Slack-Signature": interactions.signature(signed, stamp)})
        self.assertEqual(response.status_code, 401)
        self.assert_nothing_changed()

    def test_a_replayed_request_is_refused_the_second_time(self) -> None:
        stamp = int(time.time())
        body = interactions.body_of(interactions.block_actions("open", self.approval.id, user=RITA))
        first = interactions.post(self.client, {}, body=body, timestamp=stamp)
        self.assertEqual(first.status_code, 200)
        again = interactions.post(self.client, {}, body=body, timestamp=stamp)
        self.assertEqual(again.status_code, 401)
        self.assertEqual(SlackRequestSeen.objects.count(), 1)
        self.assert_nothing_changed()

    def test_signed_payloads_of_the_wrong_shape_are_answered_without_an_error(self) -> None:
        shapes = [
            {"type": "block_actions", "user": "U0RITA", "team": [], "channel": "C1", "actions": {"x": 1}},
            {"type": "block_actions", "user": {"id": RITA}, "team": {"id": interactions.TEAM},
             "actions": [{"action_id": "approve", "value": "not-a-uuid"}, "junk"]},
            {"type": "view_submission", "view": {"callback_id": "loopgate_edit", "private_metadata": "[1]",
                                                 "state": {"values": []}}},
            {"type": "view_submission", "user": {"id": RITA}, "team": {"id": interactions.TEAM},
             "view": {"callback_id": "loopgate_edit", "private_metadata": f'{{"approval": "{self.approval.id}"}}',
                      "state": {"values": {"args": {"value": {"type": "static_select", "selected_option": "x"}},
                                           "comment": "no"}}}},
            ["not", "an", "object"],
            {"type": "shortcut"},
        ]
        for shape in shapes:
            with self.subTest(shape=shape), self.captureOnCommitCallbacks(execute=False):
                response = interactions.post(self.client, shape)  # type: ignore[arg-type]
                self.assertIn(response.status_code, (200, 400))
        self.assertEqual(Approval.objects.get(id=self.approval.id).status, Approval.Status.PENDING)
        redis.Redis.from_url(settings.REDIS_URL).ltrim(settings.CELERY_TASK_DEFAULT_QUEUE, queued() - self.before, -1)

    def test_a_signed_approve_from_a_linked_user_decides_as_them(self) -> None:
        with self.captureOnCommitCallbacks(execute=False):
            response = interactions.post(self.client, self.click)
        self.assertEqual(response.status_code, 200)
        self.approval.refresh_from_db()
        self.assertEqual((self.approval.status, self.approval.decided_by), ("approved", self.users["reviewer"]))

    def test_a_reviewer_linked_in_another_workspace_is_not_this_one(self) -> None:
        click = interactions.block_actions("approve", self.approval.id, user=RITA, team="T0ELSEWHERE")
        response = interactions.post(self.client, click)
        self.assertEqual(response.status_code, 200)
        self.approval.refresh_from_db()
        self.assertEqual(self.approval.status, Approval.Status.PENDING)
        self.assertEqual(queued(), self.before + 1)  # the ephemeral refusal, and nothing else
        # No worker runs here: take that message back (kombu pushes on the left) so no later one sends it.
        redis.Redis.from_url(settings.REDIS_URL).lpop(settings.CELERY_TASK_DEFAULT_QUEUE)


class FeatureOffTests(TestCase):
    def test_without_slack_settings_the_endpoint_is_not_there_and_nothing_is_queued(self) -> None:
        approval = make_approval()
        before = queued()
        response = interactions.post(self.client, interactions.block_actions("approve", approval.id, user=RITA))
        self.assertEqual(response.status_code, 404)
        listeners.on_approval_event("created", [approval.id])
        events.announce("decided", [approval.id])
        self.assertEqual(queued(), before)


class LinkPageTests(PageTestCase):
    def test_a_user_links_their_slack_account_with_the_link_slack_showed_them(self) -> None:
        url = interactivity.link_url(interactions.TEAM, "U0OTTO").removeprefix(settings.LOOPGATE_SITE_URL)
        self.login("reviewer")
        page = self.client.get(url)
        self.assertContains(page, "Link my Slack account")
        self.assertContains(page, "U0OTTO")
        response = self.client.post(url)
        self.assertRedirects(response, "/approvals/", fetch_redirect_response=False)
        identity = SlackIdentity.objects.get(slack_user_id="U0OTTO")
        self.assertEqual((identity.team_id, identity.user, identity.linked_by),
                         (interactions.TEAM, self.users["reviewer"], self.users["reviewer"]))
        self.assertContains(self.client.get(url), "Already linked")

    def test_a_forged_or_expired_link_links_nothing(self) -> None:
        self.login("reviewer")
        token = interactivity.link_token(interactions.TEAM, "U0OTTO")
        response = self.client.post(f"/slack/link/{token[:-2]}xx/")
        self.assertContains(response, "This link no longer works", status_code=400)
        self.assertFalse(SlackIdentity.objects.exists())

    def test_a_slack_user_linked_to_someone_else_is_not_taken_over(self) -> None:
        services.identity_link(team_id=interactions.TEAM, slack_user_id="U0OTTO", user=self.users["admin"],
                               linked_by=None)
        self.login("operator")
        response = self.client.post(interactivity.link_url(interactions.TEAM, "U0OTTO")
                                    .removeprefix(settings.LOOPGATE_SITE_URL))
        self.assertContains(response, "another Loopgate account", status_code=409)
        self.assertEqual(SlackIdentity.objects.get(slack_user_id="U0OTTO").user, self.users["admin"])

    def test_the_link_page_needs_a_login(self) -> None:
        url = interactivity.link_url(interactions.TEAM, "U0OTTO").removeprefix(settings.LOOPGATE_SITE_URL)
        response = self.client.post(url)
        self.assertEqual(response.status_code, 302)
        self.assertIn("/login/", response["Location"])
        self.assertFalse(SlackIdentity.objects.exists())


class LinkCommandTests(TestCase):
    def test_an_admin_links_and_unlinks_a_slack_user_from_the_command_line(self) -> None:
        users = make_role_users()
        call_command("slack_link", "rita", interactions.TEAM, "U0RITA")
        self.assertEqual(SlackIdentity.objects.get(slack_user_id="U0RITA").user, users["reviewer"])
        call_command("slack_link", "rita", interactions.TEAM, "U0RITA", "--unlink")
        self.assertFalse(SlackIdentity.objects.exists())

    def test_ids_that_are_not_slack_ids_are_refused(self) -> None:
        make_role_users()
        with self.assertRaisesMessage(CommandError, "A Slack user id looks like"):
            call_command("slack_link", "rita", interactions.TEAM, "rita")
        self.assertFalse(SlackIdentity.objects.exists())


class SlackSettingsTests(TestCase):
    def test_a_token_without_a_signing_secret_and_bad_channel_maps_fail_at_start_up(self) -> None:
        from tests.orchestrator.test_settings import load

        half = load(LOOPGATE_SLACK_BOT_TOKEN="xoxb-1")
        self.assertNotEqual(half.returncode, 0)
        self.assertIn("Set both LOOPGATE_SLACK_BOT_TOKEN and LOOPGATE_SLACK_SIGNING_SECRET", half.stderr)
        bad = load(LOOPGATE_SLACK_BOT_TOKEN="xoxb-1", LOOPGATE_SLACK_SIGNING_SECRET="s",
                   LOOPGATE_SLACK_CHANNELS='["C1"]')
        self.assertIn("LOOPGATE_SLACK_CHANNELS must be a JSON object", bad.stderr)
        good = load(LOOPGATE_SLACK_BOT_TOKEN="xoxb-1", LOOPGATE_SLACK_SIGNING_SECRET="s",
                    LOOPGATE_SLACK_CHANNELS='{"finops": "C1"}')
        self.assertEqual(good.returncode, 0, good.stderr)
