"""The Block Kit Loopgate sends: graph text never becomes a mention or a link, the buttons are
what the payload allows, and the Edit modal is built from (and read back into) the argument schema."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.test import TestCase

from approvals import payloads
from slack_approvals import blocks
from tests.approvals.factories import EMAIL_SCHEMA, HITL_VALUE, INBOX_VALUE, make_approval
from tests.slack_approvals import interactions

URL = "http://loopgate.test/approvals/x/"


def texts(value: object) -> list[dict]:
    """Every text object in some Block Kit."""
    found = []
    if isinstance(value, dict):
        if value.get("type") in ("plain_text", "mrkdwn") and "text" in value:
            found.append(value)
        for item in value.values():
            found += texts(item)
    elif isinstance(value, list):
        for item in value:
            found += texts(item)
    return found


class MessageTests(TestCase):
    def test_text_from_the_graph_is_plain_text_or_escaped_never_a_mention_or_a_link(self) -> None:
        hostile = {"action": "<!channel> deploy", "description": "<https://evil.example|click me> & <@U999>",
                   "target": "<!here>", "allowed_decisions": ["approve", "reject"]}
        approval = make_approval(value=hostile, graph_name="t_<!everyone>")
        message = blocks.message_blocks(approval, URL)
        for text in texts(message):
            if text["type"] == "mrkdwn":
                self.assertNotIn("<!channel>", text["text"])
                self.assertNotIn("<!here>", text["text"])
                self.assertNotIn("<!everyone>", text["text"])
                self.assertNotIn("<https://evil", text["text"])
        self.assertIn("&lt;!channel&gt;", blocks.fallback_text(approval))
        self.assertTrue(any(t["type"] == "plain_text" and "<https://evil.example|click me>" in t["text"]
                            for t in texts(message)))

    def test_buttons_are_the_decisions_the_payload_allows(self) -> None:
        only_approve = make_approval(value={"action": "go", "allowed_decisions": ["approve", "respond"]})
        actions = [b for b in blocks.message_blocks(only_approve, URL) if b["type"] == "actions"][0]
        self.assertEqual([e["action_id"] for e in actions["elements"]], ["approve", "open"])
        two = dict(HITL_VALUE, action_requests=HITL_VALUE["action_requests"] * 2,
                   review_configs=HITL_VALUE["review_configs"])
        several = make_approval(value=two)
        actions = [b for b in blocks.message_blocks(several, URL) if b["type"] == "actions"][0]
        self.assertEqual([e["action_id"] for e in actions["elements"]], ["approve", "reject", "open"])  # no Edit

    def test_a_decided_approval_shows_who_decided_instead_of_buttons(self) -> None:
        from approvals import services
        from tests.factories import make_role_users

        users = make_role_users()
        approval = make_approval(value=INBOX_VALUE)
        services.approval_decide(approval_id=approval.id, user=users["reviewer"], decisions=[{"type": "approve"}])
        approval.refresh_from_db()
        message = blocks.message_blocks(approval, URL)
        self.assertFalse([b for b in message if b["type"] == "actions"])
        self.assertIn("*Approved* by rita", json.dumps(message))


class EditModalTests(TestCase):
    def setUp(self) -> None:
        request = {**HITL_VALUE["action_requests"][0], "args": {"to": "alice@example.com", "subject": "Q3",
                                                                  "body": "Numbers.", "urgent": True}}
        value = {"action_requests": [request],
                 "review_configs": [{**HITL_VALUE["review_configs"][0], "args_schema": EMAIL_SCHEMA}]}
        self.approval = make_approval(value=value)

    def test_the_modal_has_a_typed_input_per_schema_argument_prefilled(self) -> None:
        view = blocks.edit_modal(self.approval, {"approval": str(self.approval.id)})
        inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
        self.assertEqual(inputs["arg:to"]["element"]["initial_value"], "alice@example.com")
        self.assertFalse(inputs["arg:to"]["optional"])
        self.assertTrue(inputs["arg:body"]["element"]["multiline"])
        self.assertEqual(inputs["arg:urgent"]["element"]["type"], "checkboxes")
        self.assertIn("initial_options", inputs["arg:urgent"]["element"])
        self.assertEqual(inputs["arg:copies"]["element"], {"type": "number_input", "is_decimal_allowed": False,
                                                           "min_value": "0", "action_id": "value"})
        self.assertEqual(json.loads(view["private_metadata"]), {"approval": str(self.approval.id)})
        self.assertLessEqual(len(view["title"]["text"]), 24)

    def test_a_submission_is_read_back_in_the_schemas_types(self) -> None:
        values = {"arg:to": interactions.text("bob@example.com"), "arg:subject": interactions.text("Q3 final"),
                  "arg:body": interactions.text("See attached."), "arg:urgent": interactions.checkbox(False),
                  "arg:copies": interactions.number("2"), "comment": interactions.text(" ok ")}
        args, comment, errors = blocks.edit_submission(self.approval, values)
        self.assertEqual(errors, {})
        self.assertEqual(args, {"to": "bob@example.com", "subject": "Q3 final", "body": "See attached.",
                                "urgent": False, "copies": 2})
        self.assertEqual(comment, "ok")
        payloads.check_decisions(self.approval.actions, [{"type": "edit", "args": args}], fmt=self.approval.format)

    def test_a_missing_required_field_and_a_bad_number_are_errors_on_their_blocks(self) -> None:
        values = {"arg:to": interactions.text(""), "arg:subject": interactions.text("s"),
                  "arg:body": interactions.text("b"), "arg:urgent": interactions.checkbox(True),
                  "arg:copies": interactions.number("two")}
        _args, _comment, errors = blocks.edit_submission(self.approval, values)
        self.assertEqual(errors, {"arg:to": "This field is required.", "arg:copies": "Enter a whole number."})

    def test_the_services_errors_land_on_the_argument_they_name(self) -> None:
        values = {"arg:to": interactions.text("x"), "arg:copies": interactions.number("1")}
        exc = ValidationError({"0.args.copies": ["-1 is less than the minimum of 0"], "0.type": ["nope"]})
        self.assertEqual(blocks.service_errors(self.approval, exc, values),
                         {"arg:copies": "-1 is less than the minimum of 0", "arg:to": "nope"})

    def test_without_a_schema_the_arguments_are_one_json_box(self) -> None:
        approval = make_approval(value={"action": "deploy", "service": "api", "allowed_decisions": ["edit"]})
        view = blocks.edit_modal(approval, {})
        [box] = [b for b in view["blocks"] if b["type"] == "input" and b["block_id"] == blocks.ARGS_BLOCK]
        self.assertEqual(json.loads(box["element"]["initial_value"]), {"service": "api"})
        args, _c, errors = blocks.edit_submission(approval, {"args": interactions.text('{"service": "web"}')})
        self.assertEqual((args, errors), ({"service": "web"}, {}))
        _a, _c, errors = blocks.edit_submission(approval, {"args": interactions.text("{nope")})
        self.assertIn("args", errors)
