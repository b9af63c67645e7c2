"""Payload formats and resume values, checked against the installed LangChain and LangGraph types."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from langchain.agents.middleware.human_in_the_loop import HITLResponse, _decision_schema
from langchain_core.tools import tool
from pydantic import TypeAdapter

from approvals import payloads
from tests.approvals.factories import EMAIL_SCHEMA, HITL_VALUE, INBOX_VALUE


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email."""
    return "sent"


def hitl(schema=None):  # type: ignore[no-untyped-def]
    value = {**HITL_VALUE, "review_configs": [dict(HITL_VALUE["review_configs"][0])]}
    if schema is not None:
        value["review_configs"][0]["args_schema"] = schema
    return payloads.parse(value)


class TestRecognisingFormats:
    def test_a_hitl_request_becomes_one_action_per_tool_call(self) -> None:
        fmt, actions = hitl()
        assert fmt == payloads.HITL
        assert actions == [{"name": "send_email", "args": HITL_VALUE["action_requests"][0]["args"],
                            "arg_names": ["to", "subject", "body"],
                            "description": "Tool execution requires approval",
                            "allowed_decisions": ["approve", "edit", "reject", "respond"], "args_schema": None}]

    def test_a_per_call_request_takes_its_decisions_and_argument_schema_from_the_response_schema(self) -> None:
        schema = TypeAdapter(_decision_schema(["approve", "edit", "reject"], "send_email", send_email)).json_schema()
        value = {"type": "tool_approval", "tool_call_id": "call_1", "name": "send_email",
                 "args": {"to": "a@example.com", "subject": "s", "body": "b"}, "description": "Send it?"}
        fmt, [action] = payloads.parse(value, schema)
        assert fmt == payloads.TOOL_APPROVAL
        assert action["allowed_decisions"] == ["approve", "edit", "reject"]
        assert action["args_schema"]["required"] == ["to", "subject", "body"]
        assert payloads.validate_args({"to": "x", "subject": "s"}, action["args_schema"]) == {
            "body": ["This field is required."]}

    def test_an_edit_names_each_missing_argument_and_refuses_arguments_the_schema_does_not_take(self) -> None:
        schema = {"type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"},
                                                   "body": {"type": "string"}},
                  "required": ["to", "subject", "body"]}
        assert payloads.validate_args({}, schema) == {
            "to": ["This field is required."], "subject": ["This field is required."],
            "body": ["This field is required."]}
        assert payloads.validate_args({"to": "a", "subject": "s", "body": "b", "force": True}, schema) == {
            "force": ["Not an argument here. It takes: body, subject, to."]}
        # A schema that allows more arguments says so, and then they are taken.
        open_schema = {**schema, "additionalProperties": True}
        assert payloads.validate_args({"to": "a", "subject": "s", "body": "b", "force": True}, open_schema) == {}

    def test_an_agent_inbox_interrupt_maps_its_flags_to_decisions(self) -> None:
        value = [dict(INBOX_VALUE[0], config={"allow_accept": True, "allow_edit": False, "allow_respond": True,
                                              "allow_ignore": False})]
        fmt, [action] = payloads.parse(value)
        assert fmt == payloads.AGENT_INBOX
        assert (action["name"], action["args"]) == ("post_tweet", {"text": "Hello"})
        assert action["allowed_decisions"] == ["approve", "respond"]

    def test_a_plain_question_is_approve_reject_or_respond(self) -> None:
        fmt, [action] = payloads.parse("ok?")
        assert fmt == payloads.PLAIN
        assert action["description"] == "ok?"
        assert action["allowed_decisions"] == ["approve", "reject", "respond"]

    def test_a_plain_dict_is_named_by_its_action_and_keeps_its_facts_as_arguments(self) -> None:
        fmt, [action] = payloads.parse({"action": "shutdown_cluster", "cluster": "dev-2", "description": "Shut it?",
                                        "timeout_seconds": 60})
        assert (fmt, action["name"], action["args"], action["description"]) == (
            payloads.PLAIN, "shutdown_cluster", {"cluster": "dev-2"}, "Shut it?")

    def test_a_broken_argument_schema_is_ignored_rather_than_blocking_edits(self) -> None:
        _fmt, [action] = hitl({"type": "no-such-type"})
        assert action["args_schema"] is None


class TestDecisions:
    def test_every_decision_becomes_the_exact_hitl_response_langchain_reads(self) -> None:
        _fmt, actions = payloads.parse({**HITL_VALUE, "action_requests": HITL_VALUE["action_requests"] * 4,
                                        "review_configs": HITL_VALUE["review_configs"]})
        args = {"to": "bob@example.com", "subject": "Q3", "body": "Hi"}
        checked = payloads.check_decisions(actions, [
            {"type": "approve"}, {"type": "edit", "args": args},
            {"type": "reject", "message": " too early "}, {"type": "respond", "message": "Already sent."}])
        value = payloads.resume_value(payloads.HITL, actions, checked, by="rita")
        assert value == {"decisions": [
            {"type": "approve"},
            {"type": "edit", "edited_action": {"name": "send_email", "args": args}},
            {"type": "reject", "message": "too early"},
            {"type": "respond", "message": "Already sent."},
        ]}
        TypeAdapter(HITLResponse).validate_python(value)
        assert payloads.status_of(checked) == "edited"

    def test_a_per_call_decision_is_one_dict_that_the_tools_response_schema_accepts(self) -> None:
        decision_type = _decision_schema(["approve", "edit", "reject", "respond"], "send_email", send_email)
        schema = TypeAdapter(decision_type).json_schema()
        _fmt, actions = payloads.parse({"type": "tool_approval", "tool_call_id": "c", "name": "send_email",
                                        "args": {"to": "a", "subject": "s", "body": "b"}, "description": ""}, schema)
        for raw in ({"type": "approve"}, {"type": "edit", "args": {"to": "z", "subject": "s", "body": "b"}},
                    {"type": "reject", "message": ""}, {"type": "respond", "message": "done"}):
            value = payloads.resume_value(payloads.TOOL_APPROVAL, actions, payloads.check_decisions(actions, [raw]))
            assert value["type"] == raw["type"]
            TypeAdapter(decision_type).validate_python(value)  # what LangGraph checks before saving it

    def test_agent_inbox_answers_are_a_list_of_human_responses(self) -> None:
        _fmt, actions = payloads.parse(INBOX_VALUE)
        expected = {
            "approve": {"type": "accept", "args": None},
            "edit": {"type": "edit", "args": {"action": "post_tweet", "args": {"text": "Bye"}}},
            "respond": {"type": "response", "args": "Not today"},
            "reject": {"type": "ignore", "args": None},
        }
        for kind, response in expected.items():
            raw = {"type": kind, "args": {"text": "Bye"}, "message": "Not today"}
            checked = payloads.check_decisions(actions, [raw])
            assert payloads.resume_value(payloads.AGENT_INBOX, actions, checked) == [response]

    def test_plain_answers_are_a_small_dict_with_who_answered(self) -> None:
        _fmt, actions = payloads.parse("ok?")
        ok = payloads.check_decisions(actions, [{"type": "approve"}])
        assert payloads.resume_value(payloads.PLAIN, actions, ok, by="rita") == {"type": "approve", "by": "rita"}
        no = payloads.check_decisions(actions, [{"type": "reject", "message": "No."}])
        assert payloads.resume_value(payloads.PLAIN, actions, no, by="rita", comment="see ticket") == {
            "type": "reject", "message": "No.", "by": "rita", "comment": "see ticket"}

    @pytest.mark.parametrize(
        ("decisions", "errors"),
        [
            ([], {"__all__": ["Give one decision per action: 1 expected."]}),
            ([{"type": "edit", "args": {}}], {"0.type": ["Edit is not allowed for review; choose Approve, Reject, Respond."]}),
            ([{"type": "respond", "message": "  "}], {"0.message": ["Write the answer to send back to the agent."]}),
            ([{"type": "launch"}], {"0.type": ["Choose a decision for review: Approve, Reject, Respond."]}),
            ([{"type": "reject", "message": 42}], {"0.message": ["The message must be text."]}),
        ],
    )
    def test_decisions_the_payload_does_not_allow_are_refused(self, decisions, errors) -> None:  # type: ignore[no-untyped-def]
        _fmt, actions = payloads.parse("ok?")
        with pytest.raises(ValidationError) as caught:
            payloads.check_decisions(actions, decisions)
        assert caught.value.message_dict == errors

    def test_edited_arguments_are_checked_against_their_schema_field_by_field(self) -> None:
        _fmt, actions = hitl(EMAIL_SCHEMA)
        with pytest.raises(ValidationError) as caught:
            payloads.check_decisions(actions, [{"type": "edit", "args": {"to": "not an address", "subject": "x" * 81,
                                                                          "copies": -1}}])
        assert caught.value.message_dict == {
            "0.args.body": ["This field is required."],
            "0.args.copies": ["-1 is less than the minimum of 0"],
            "0.args.subject": [f"'{'x' * 81}' is too long"],
            "0.args.to": ["Not a valid email."],
        }

    def test_without_a_schema_an_edit_is_any_json_object(self) -> None:
        # LangChain's batched middleware never sends a schema: a reviewer may fix a type or add an argument.
        _fmt, actions = payloads.parse({
            "action_requests": [{"name": "resize", "args": {"size": "3", "zone": "eu"}}],
            "review_configs": [{"action_name": "resize", "allowed_decisions": ["approve", "edit"]}]})
        edited = {"size": 3, "zone": "eu", "dry_run": True}
        assert payloads.check_decisions(actions, [{"type": "edit", "args": edited}]) == [
            {"type": "edit", "args": edited}]
        assert payloads.check_decisions(actions, [{"type": "edit", "args": {}}]) == [{"type": "edit", "args": {}}]
        for args in (["size"], "3", None):
            with pytest.raises(ValidationError) as caught:
                payloads.check_decisions(actions, [{"type": "edit", "args": args}])
            assert caught.value.message_dict == {"0.args": ["The arguments must be a JSON object ({…})."]}


class TestTimeouts:
    def test_a_plain_question_times_out_with_a_timeout_answer(self) -> None:
        assert payloads.timeout_value(payloads.PLAIN, payloads.parse("ok?")[1]) == {"type": "timeout"}

    def test_structured_formats_time_out_with_their_own_refusal(self) -> None:
        _fmt, actions = hitl()
        assert payloads.timeout_value(payloads.HITL, actions) == {
            "decisions": [{"type": "reject", "message": payloads.TIMEOUT_MESSAGE}]}
        _fmt, actions = payloads.parse(INBOX_VALUE)
        assert payloads.timeout_value(payloads.AGENT_INBOX, actions) == [{"type": "ignore", "args": None}]

    def test_a_payload_that_allows_no_refusal_has_no_timeout_answer(self) -> None:
        value = {**HITL_VALUE, "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve"]}]}
        assert payloads.timeout_value(payloads.HITL, payloads.parse(value)[1]) is None


class TestOneModulePerFormat:
    def test_each_format_is_one_payload_format_recognised_in_order(self) -> None:
        names = [fmt.name for fmt in payloads.FORMATS]
        assert names == [payloads.HITL, payloads.TOOL_APPROVAL, payloads.AGENT_INBOX, payloads.PLAIN]
        assert all(isinstance(fmt, payloads.PayloadFormat) for fmt in payloads.FORMATS)
        assert payloads.format_named(payloads.BREAKPOINT).recognises({"breakpoint": "before"}) is False
        assert payloads.parse({"breakpoint": "before", "nodes": ["a"]})[0] == payloads.PLAIN

    def test_a_format_may_check_decisions_more_strictly_than_the_shared_rule(self) -> None:
        class NoEmptyReject(payloads.PayloadFormat):
            name = "no_empty_reject"

            def check_decision(self, action, raw):  # type: ignore[no-untyped-def]
                decision, errors = super().check_decision(action, raw)
                if decision is not None and decision["type"] == payloads.REJECT and not decision["message"]:
                    return None, {"message": ["Say why."]}
                return decision, errors

        _fmt, actions = payloads.parse("ok?")
        fmt = NoEmptyReject()
        assert fmt.check_decision(actions[0], {"type": "reject", "message": "no"}) == (
            {"type": "reject", "message": "no"}, {})
        assert fmt.check_decision(actions[0], {"type": "reject"}) == (None, {"message": ["Say why."]})
